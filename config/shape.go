package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// FieldError is one problem with one field of the config.
type FieldError struct {
	// Path names the field as it is written in the file: cameras[1].resolution.
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ValidationError holds every problem found in a config, in file order.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

var (
	typeOfConfig      = reflect.TypeFor[Config]()
	typeOfUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// checkShape walks a generically decoded JSON value against the Go type it
// will be decoded into, and reports unknown keys and wrong JSON types with
// their full path. encoding/json matches keys case-insensitively and its
// errors lack array indices; this is stricter and says where.
func checkShape(path string, raw any, t reflect.Type) []FieldError {
	if t == typeOfSubStream {
		if s, ok := raw.(string); ok {
			if s != SubStreamAuto {
				return []FieldError{{path, fmt.Sprintf("%q is not \"auto\" or an object such as {\"rtspPath\": \"/Streaming/Channels/102\"}", s)}}
			}
			return nil
		}
		t = typeOfSubStreamFields // its object form
	}
	if reflect.PointerTo(t).Implements(typeOfUnmarshaler) {
		switch raw.(type) {
		case string, json.Number:
			return nil
		}
		return []FieldError{{path, "must be a duration such as \"15s\", not " + jsonKind(raw)}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		if raw == nil {
			return nil
		}
		return checkShape(path, raw, t.Elem())
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			return []FieldError{{path, "must be an object, not " + jsonKind(raw)}}
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var problems []FieldError
		for _, k := range keys {
			sub := joinPath(path, k)
			f, ok := fields[k]
			if !ok {
				msg := "unknown field"
				if s := suggest(k, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				problems = append(problems, FieldError{sub, msg})
				continue
			}
			problems = append(problems, checkShape(sub, obj[k], f.Type)...)
		}
		return problems
	case reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			return []FieldError{{path, "must be an array, not " + jsonKind(raw)}}
		}
		var problems []FieldError
		for i, v := range arr {
			problems = append(problems, checkShape(fmt.Sprintf("%s[%d]", path, i), v, t.Elem())...)
		}
		return problems
	case reflect.String:
		if _, ok := raw.(string); !ok {
			return []FieldError{{path, "must be a string, not " + jsonKind(raw)}}
		}
	case reflect.Bool:
		if _, ok := raw.(bool); !ok {
			return []FieldError{{path, "must be true or false, not " + jsonKind(raw)}}
		}
	case reflect.Int, reflect.Int64:
		n, ok := raw.(json.Number)
		if !ok {
			return []FieldError{{path, "must be a whole number, not " + jsonKind(raw)}}
		}
		if _, err := n.Int64(); err != nil {
			return []FieldError{{path, fmt.Sprintf("must be a whole number, not %s", n)}}
		}
	case reflect.Float64:
		n, ok := raw.(json.Number)
		if !ok {
			return []FieldError{{path, "must be a number, not " + jsonKind(raw)}}
		}
		if _, err := n.Float64(); err != nil {
			return []FieldError{{path, fmt.Sprintf("%s is out of range", n)}}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps each JSON key of struct type t to its field.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
	}
	return fields
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true/false"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// suggest returns the known key closest to an unknown one, when it is close
// enough to be a likely misspelling.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestDist := "", 3
	for name := range fields {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
