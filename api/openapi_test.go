package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// openAPIPath is the document every route is described in.
const openAPIPath = "../docs/openapi.yaml"

// loadOpenAPI parses docs/openapi.yaml with kin-openapi's loader (every
// $ref resolved), failing the test when it does not parse.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIPath)
	if err != nil {
		t.Fatalf("%s does not load: %v", openAPIPath, err)
	}
	return doc
}

// documentedRoutes lists docs/openapi.yaml's operations as
// "METHOD /path/{param}", read from the parsed document.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for path, item := range loadOpenAPI(t).Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIDocumentIsValid validates docs/openapi.yaml as OpenAPI 3.0
// (structure, schemas, references, no stray keys such as a flow-mapping
// description cut at a comma) and checks what client generators need
// beyond that: an operationId on every operation, unique across the
// document.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("%s is not valid OpenAPI: %v", openAPIPath, err)
	}
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			switch prev, dup := seen[op.OperationID]; {
			case op.OperationID == "":
				t.Errorf("%s has no operationId", where)
			case dup:
				t.Errorf("%s and %s share operationId %q", prev, where, op.OperationID)
			default:
				seen[op.OperationID] = where
			}
		}
	}
}

// TestOpenAPIValidatorCatchesFlowMappingCommas is the validator's own
// check: a description with a comma in a YAML flow mapping, the mistake
// the document once held, must be reported, or the test above proves
// nothing.
func TestOpenAPIValidatorCatchesFlowMappingCommas(t *testing.T) {
	const doc = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x:
    get:
      operationId: getX
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: string, description: The stream URL, password masked.}
`
	loaded, err := openapi3.NewLoader().LoadFromData([]byte(doc))
	if err == nil {
		err = loaded.Validate(context.Background())
	}
	if err == nil || !strings.Contains(fmt.Sprint(err), "password masked.") {
		t.Fatalf("a description cut at a comma was not reported: %v", err)
	}
}
