package mqtt

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
)

// Home Assistant's MQTT discovery schema, as its source defines it
// (homeassistant/components/mqtt: config.py MQTT_RO_SCHEMA, schemas.py
// MQTT_ENTITY_COMMON_SCHEMA with the availability, device and origin
// schemas, binary_sensor.py and sensor.py PLATFORM_SCHEMA_MODERN), and
// the device and state classes and units of homeassistant.components.
var (
	haROKeys     = []string{"state_topic", "value_template", "qos", "encoding"}
	haCommonKeys = []string{"availability_topic", "availability_template", "payload_available", "payload_not_available",
		"availability_mode", "availability", "device", "origin", "enabled_by_default", "entity_category", "icon",
		"json_attributes_topic", "json_attributes_template", "object_id", "unique_id", "default_entity_id", "entity_picture"}
	haPlatformKeys = map[string][]string{
		"binary_sensor": {"device_class", "expire_after", "force_update", "name", "off_delay", "payload_off", "payload_on"},
		"sensor": {"device_class", "expire_after", "force_update", "last_reset_value_template", "name", "options",
			"suggested_display_precision", "state_class", "unit_of_measurement"},
	}
	haRequired   = []string{"state_topic"}
	haDeviceKeys = []string{"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
		"serial_number", "sw_version", "via_device", "suggested_area", "configuration_url"}
	haOriginKeys          = []string{"name", "sw_version", "support_url"}
	haBinaryDeviceClasses = []string{"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
		"garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug",
		"power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window"}
	// The sensor device classes cctvd may use, with the units Home
	// Assistant accepts for each.
	haSensorUnits = map[string][]string{
		"duration":  {"d", "h", "min", "s", "ms"},
		"data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
	}
	haStateClasses = []string{"measurement", "total", "total_increasing"}
	// discovery.py's TOPIC_MATCHER, below the discovery prefix.
	haTopic = regexp.MustCompile(`^(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$`)
)

// documented reads docs/alerts.md's table of discovery fields: field ->
// component -> "yes", "some" or "no"; and its device fields.
func documented(t *testing.T) (fields map[string]map[string]string, device []string) {
	t.Helper()
	data, err := os.ReadFile("../../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "## Home Assistant discovery")
	section, _, _ = strings.Cut(section, "\n## ")
	fields = map[string]map[string]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| (yes|no|some) \\| (yes|no|some) \\|")
	dev := regexp.MustCompile("^\\| `([a-z_]+)` \\| [^|]+ \\|$")
	inDevice := false
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| device field |") {
			inDevice = true
		}
		if m := row.FindStringSubmatch(line); m != nil {
			fields[m[1]] = map[string]string{"binary_sensor": m[2], "sensor": m[3]}
		} else if m := dev.FindStringSubmatch(line); m != nil && inDevice {
			device = append(device, m[1])
		}
	}
	if len(fields) < 10 || len(device) < 4 {
		t.Fatalf("docs/alerts.md: read %d discovery fields and %d device fields: %v %v", len(fields), len(device), fields, device)
	}
	return fields, device
}

// checkDiscovery checks every discovery config against Home Assistant's
// schema and docs/alerts.md, strictly: required fields present, every
// field allowed by HA and listed in the docs (and every "yes" field sent),
// values of the right type and vocabulary, the device block, unique ids,
// topics HA's matcher takes, templates that read fields the state has.
func checkDiscovery(t *testing.T, configs map[string]string, stateJSON, prefix string) {
	t.Helper()
	docFields, docDevice := documented(t)
	var state map[string]any
	if err := json.Unmarshal([]byte(stateJSON), &state); err != nil {
		t.Fatalf("state %q: %v", stateJSON, err)
	}
	ids := map[string]string{}
	components := map[string]int{}
	for topic, payload := range configs {
		rest, ok := strings.CutPrefix(topic, "homeassistant/")
		m := haTopic.FindStringSubmatch(rest)
		if !ok || m == nil {
			t.Errorf("%s: not a discovery topic Home Assistant matches", topic)
			continue
		}
		comp := m[1]
		components[comp]++
		allowed := slices.Concat(haROKeys, haCommonKeys, haPlatformKeys[comp])
		if haPlatformKeys[comp] == nil {
			t.Errorf("%s: component %s is not binary_sensor or sensor", topic, comp)
			continue
		}
		var cfg map[string]any
		dec := json.NewDecoder(strings.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&cfg); err != nil {
			t.Errorf("%s: %v", topic, err)
			continue
		}
		for _, k := range haRequired {
			if _, ok := cfg[k]; !ok {
				t.Errorf("%s: required %s missing", topic, k)
			}
		}
		for k := range cfg {
			if !slices.Contains(allowed, k) {
				t.Errorf("%s: %s is not a field of Home Assistant's MQTT %s", topic, k, comp)
			}
			if d, ok := docFields[k]; !ok || d[comp] == "no" {
				t.Errorf("%s: %s is sent but docs/alerts.md does not list it for %s", topic, k, comp)
			}
		}
		for k, d := range docFields {
			if d[comp] != "no" && !slices.Contains(allowed, k) {
				t.Errorf("docs/alerts.md lists %s, not a field of Home Assistant's MQTT %s", k, comp)
			}
			if _, sent := cfg[k]; d[comp] == "yes" && !sent {
				t.Errorf("%s: %s is documented for every %s but not sent", topic, k, comp)
			}
		}
		str := func(k string) string {
			v, ok := cfg[k]
			if !ok {
				return ""
			}
			s, isStr := v.(string)
			if !isStr || s == "" {
				t.Errorf("%s: %s = %v is not a non-empty string", topic, k, v)
			}
			return s
		}
		for _, k := range []string{"name", "unique_id", "state_topic", "value_template", "availability_topic", "payload_available",
			"payload_not_available", "icon", "device_class", "payload_on", "payload_off", "state_class", "unit_of_measurement"} {
			str(k)
		}
		if q := cfg["qos"]; q != json.Number("1") {
			t.Errorf("%s: qos %v", topic, q)
		}
		if icon := str("icon"); icon != "" && !strings.HasPrefix(icon, "mdi:") {
			t.Errorf("%s: icon %q", topic, icon)
		}
		for _, k := range []string{"state_topic", "availability_topic"} {
			if v := str(k); strings.ContainsAny(v, "+#") || !strings.HasPrefix(v, prefix+"/") {
				t.Errorf("%s: %s %q", topic, k, v)
			}
		}
		if str("availability_topic") != prefix+"/available" || str("payload_available") != "online" || str("payload_not_available") != "offline" {
			t.Errorf("%s: availability %v %v %v", topic, cfg["availability_topic"], cfg["payload_available"], cfg["payload_not_available"])
		}
		uid := str("unique_id")
		if other, dup := ids[uid]; dup {
			t.Errorf("%s and %s share unique_id %s", topic, other, uid)
		}
		ids[uid] = topic
		if want := m[2] + "_" + m[3]; uid != want {
			t.Errorf("%s: unique_id %s, want %s", topic, uid, want)
		}
		switch comp {
		case "binary_sensor":
			if dc := str("device_class"); !slices.Contains(haBinaryDeviceClasses, dc) || dc != "problem" {
				t.Errorf("%s: device_class %q", topic, dc)
			}
			if str("payload_on") != "ON" || str("payload_off") != "OFF" || str("value_template") != CameraProblemTemplate {
				t.Errorf("%s: payloads %v/%v, template %v", topic, cfg["payload_on"], cfg["payload_off"], cfg["value_template"])
			}
			if st := str("state_topic"); !strings.HasSuffix(st, "/status") {
				t.Errorf("%s: state_topic %s", topic, st)
			}
		case "sensor":
			if sc := str("state_class"); !slices.Contains(haStateClasses, sc) {
				t.Errorf("%s: state_class %q", topic, sc)
			}
			unit := str("unit_of_measurement")
			if dc, ok := cfg["device_class"].(string); ok && !slices.Contains(haSensorUnits[dc], unit) {
				t.Errorf("%s: unit %q is not one of device class %s's %v", topic, unit, dc, haSensorUnits[dc])
			}
			field, ok := strings.CutPrefix(str("value_template"), "{{ value_json.")
			field, ok2 := strings.CutSuffix(field, " }}")
			if _, has := state[field]; !ok || !ok2 || !has || str("state_topic") != prefix+"/state" {
				t.Errorf("%s: template %v reads a field %s/state does not have (%s)", topic, cfg["value_template"], prefix, stateJSON)
			}
		}
		dev, ok := cfg["device"].(map[string]any)
		if !ok {
			t.Errorf("%s: no device block", topic)
			continue
		}
		for k := range dev {
			if !slices.Contains(haDeviceKeys, k) || !slices.Contains(docDevice, k) {
				t.Errorf("%s: device.%s is not a documented device field of Home Assistant", topic, k)
			}
		}
		for _, k := range docDevice {
			if _, ok := dev[k]; !ok {
				t.Errorf("%s: device.%s is documented but not sent", topic, k)
			}
		}
		if idents, ok := dev["identifiers"].([]any); !ok || len(idents) == 0 {
			t.Errorf("%s: the device has no identifier (Home Assistant needs one)", topic)
		}
		org, ok := cfg["origin"].(map[string]any)
		if name, _ := org["name"].(string); !ok || name == "" {
			t.Errorf("%s: origin %v lacks its required name", topic, cfg["origin"])
		}
		for k := range org {
			if !slices.Contains(haOriginKeys, k) {
				t.Errorf("%s: origin.%s", topic, k)
			}
		}
	}
	if components["sensor"] != 4 || components["binary_sensor"] == 0 {
		t.Errorf("components %v: want 4 sensors and a binary sensor per camera", components)
	}
}

func TestDiscoveryConfigsMatchHomeAssistantAndTheDocs(t *testing.T) {
	p, err := New(Config{Broker: "127.0.0.1:1", TopicPrefix: "site1/cctvd", Host: "nvr-1", Version: "1.2.3"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]string{}
	for topic, payload := range p.Discovery([]string{"door", "yard.1", "Gate-2"}) {
		configs[topic] = string(payload)
	}
	if _, ok := configs["homeassistant/binary_sensor/site1_cctvd/yard_1_problem/config"]; !ok {
		t.Errorf("yard.1's topic: %v", configs)
	}
	state, _ := json.Marshal(stateOf(snapshot))
	checkDiscovery(t, configs, string(state), "site1/cctvd")
}

var snapshot = alerts.Snapshot{
	Cameras: []alerts.CameraStatus{{Name: "door", Status: alerts.StatusRecording}, {Name: "yard.1", Status: alerts.StatusDown},
		{Name: "gate", Status: alerts.StatusStopped}, {Name: "attic", Status: alerts.StatusWaitingDisk}, {Name: "new", Status: ""}},
	BacklogKnown: true, BacklogSegments: 3, BacklogBytes: 30e6, BacklogOldestSeconds: 75.4,
	StorageKnown: true, UsedBytes: 42e9, LimitBytes: 100e9, FreeBytes: 300e9,
}
