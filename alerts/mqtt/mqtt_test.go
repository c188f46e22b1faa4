package mqtt

import (
	"strings"
	"testing"
)

func TestBrokerURL(t *testing.T) {
	tests := []struct {
		in, want string
		tls      bool
		err      string
	}{
		{"broker.local", "tcp://broker.local:1883", false, ""},
		{"broker.local:1884", "tcp://broker.local:1884", false, ""},
		{"mqtt://10.0.0.5", "tcp://10.0.0.5:1883", false, ""},
		{"mqtts://broker.local", "ssl://broker.local:8883", true, ""},
		{"tcp://broker.local:1883", "ssl://broker.local:1883", true, "force"},
		{"mqtt://u:p@broker.local", "", false, "credentials"},
		{"ws://broker.local", "", false, "scheme"},
		{"mqtt://broker.local/x", "", false, "path"},
	}
	for _, tt := range tests {
		got, tls, err := BrokerURL(tt.in, tt.err == "force")
		if tt.err != "" && tt.err != "force" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want an error about %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || tls != tt.tls {
			t.Errorf("%s: %s %v %v, want %s %v", tt.in, got, tls, err, tt.want, tt.tls)
		}
	}
}
