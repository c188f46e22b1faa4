package mqtt

import "encoding/json"

// Home Assistant's MQTT discovery: a retained config per entity on
// <discovery prefix>/<component>/<node id>/<object id>/config, whose
// fields are those of HA's MQTT binary_sensor and sensor platforms
// (docs/alerts.md lists the ones cctvd sends). The node id is the topic
// prefix as an object id, so two boxes on one broker (which need two topic
// prefixes) are two devices.

// Device is the discovery payload's device block: every entity of a box
// belongs to one device.
type Device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

// Origin names the software that sent the config.
type Origin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version,omitempty"`
}

// Entity is a binary_sensor's or a sensor's discovery config.
type Entity struct {
	Name                string `json:"name"`
	UniqueID            string `json:"unique_id"`
	StateTopic          string `json:"state_topic"`
	ValueTemplate       string `json:"value_template"`
	AvailabilityTopic   string `json:"availability_topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
	QoS                 int    `json:"qos"`
	Device              Device `json:"device"`
	Origin              Origin `json:"origin"`
	Icon                string `json:"icon,omitempty"`
	DeviceClass         string `json:"device_class,omitempty"`
	// binary_sensor only.
	PayloadOn  string `json:"payload_on,omitempty"`
	PayloadOff string `json:"payload_off,omitempty"`
	// sensor only.
	StateClass        string `json:"state_class,omitempty"`
	UnitOfMeasurement string `json:"unit_of_measurement,omitempty"`
}

// discovery is one config and its topic.
type discovery struct {
	topic   string
	payload []byte
}

func (p *Publisher) device() Device {
	name := "cctvd"
	if p.cfg.Host != "" {
		name += " " + p.cfg.Host
	}
	return Device{Identifiers: []string{"cctvd_" + p.node}, Name: name, Manufacturer: "cctvd", Model: "cctvd network video recorder",
		SWVersion: p.cfg.Version}
}

func (p *Publisher) entity(name, uniqueID, stateTopic, template string) Entity {
	return Entity{Name: name, UniqueID: uniqueID, StateTopic: stateTopic, ValueTemplate: template,
		AvailabilityTopic: p.topic("available"), PayloadAvailable: "online", PayloadNotAvailable: "offline", QoS: 1,
		Device: p.device(), Origin: Origin{Name: "cctvd", SWVersion: p.cfg.Version}}
}

// CameraProblemTemplate turns a camera's status into the binary sensor's
// state: a problem while the camera is down or waits for its disk.
const CameraProblemTemplate = "{{ 'ON' if value in ['down', 'waiting-disk'] else 'OFF' }}"

// cameraConfig is a camera's binary sensor.
func (p *Publisher) cameraConfig(camera string) discovery {
	obj := ObjectID(camera) + "_problem"
	e := p.entity("Camera "+camera, p.node+"_"+obj, p.topic(camera+"/status"), CameraProblemTemplate)
	e.DeviceClass, e.PayloadOn, e.PayloadOff, e.Icon = "problem", "ON", "OFF", "mdi:cctv"
	return p.config("binary_sensor", obj, e)
}

// sensorConfigs are the box's sensors, read from <prefix>/state.
func (p *Publisher) sensorConfigs() []discovery {
	state := p.topic("state")
	mk := func(obj, name, field, unit, class, icon string) discovery {
		e := p.entity(name, p.node+"_"+obj, state, "{{ value_json."+field+" }}")
		e.UnitOfMeasurement, e.DeviceClass, e.Icon, e.StateClass = unit, class, icon, "measurement"
		return p.config("sensor", obj, e)
	}
	return []discovery{
		mk("upload_backlog", "Upload backlog", "backlogSegments", "segments", "", "mdi:cloud-upload"),
		mk("upload_backlog_age", "Upload backlog age", "backlogOldestSeconds", "s", "duration", "mdi:timer-sand"),
		mk("disk_use", "Recordings disk use", "diskUsedPercent", "%", "", "mdi:harddisk"),
		mk("disk_used", "Recordings on disk", "diskUsedGB", "GB", "data_size", "mdi:harddisk"),
	}
}

func (p *Publisher) config(component, obj string, e Entity) discovery {
	b, _ := json.Marshal(e) // plain strings: cannot fail
	return discovery{topic: p.cfg.DiscoveryPrefix + "/" + component + "/" + p.node + "/" + obj + "/config", payload: b}
}

// Discovery returns every discovery config for the cameras named, by
// topic, as Run publishes them (for tests and docs).
func (p *Publisher) Discovery(cameras []string) map[string][]byte {
	out := map[string][]byte{}
	for _, d := range p.sensorConfigs() {
		out[d.topic] = d.payload
	}
	for _, c := range cameras {
		d := p.cameraConfig(c)
		out[d.topic] = d.payload
	}
	return out
}
