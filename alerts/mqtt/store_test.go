package mqtt

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestStoreHandsBackCopies(t *testing.T) {
	s := newCopyStore()
	s.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "cctvd/nvr/state", []byte("on")
	s.Put("o.7", pub)

	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok {
		t.Fatalf("Get = %T, want the publish back", s.Get("o.7"))
	}
	if got == pub {
		t.Fatal("Get handed back the packet the client is sending, not a copy")
	}
	if got.MessageID != 7 || got.TopicName != pub.TopicName || string(got.Payload) != "on" || got.Qos != 1 {
		t.Fatalf("copy = id %d topic %q payload %q qos %d", got.MessageID, got.TopicName, got.Payload, got.Qos)
	}
	got.Dup = true // what the client's resume does
	if pub.Dup {
		t.Fatal("setting DUP on the copy changed the packet being sent")
	}
	if again := s.Get("o.7").(*packets.PublishPacket); again.Dup {
		t.Fatal("setting DUP on one copy changed the kept bytes")
	}
	if keys := s.All(); len(keys) != 1 || keys[0] != "o.7" {
		t.Fatalf("All = %v", keys)
	}
	s.Del("o.7")
	if s.Get("o.7") != nil || len(s.All()) != 0 {
		t.Fatal("Del left the packet")
	}
	s.Put("o.8", pub)
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatal("Reset left packets")
	}
	s.Close()
	s.Put("o.9", pub)
	if s.Get("o.9") != nil {
		t.Fatal("a closed store kept a packet")
	}
}
