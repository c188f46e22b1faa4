package mqtt

import (
	"bytes"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is the client's in-flight message store. It keeps each packet as
// its bytes on the wire and hands back a fresh packet on every Get, never the
// one the client is writing: paho's MemoryStore returns the stored pointer, and
// on a reconnect the client's resume sets DUP on that packet while the new
// connection's writer may still be sending the same packet from the outbound
// queue (a data race inside paho, eclipse-paho/paho.mqtt.golang#703, seen by
// the race detector after a broker restart).
type copyStore struct {
	mu   sync.Mutex
	open bool
	msgs map[string][]byte
}

var _ paho.Store = (*copyStore)(nil)

func newCopyStore() *copyStore { return &copyStore{msgs: map[string][]byte{}} }

func (s *copyStore) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = true
}

func (s *copyStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = false
}

// Put keeps the packet's bytes. It is called by the goroutine that made the
// packet, before the packet is queued for sending, so writing it here races
// with nobody.
func (s *copyStore) Put(key string, p packets.ControlPacket) {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return // a packet that cannot be written cannot be resent either
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		s.msgs[key] = buf.Bytes()
	}
}

// Get decodes a new packet from the kept bytes (nil when there is none).
func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.msgs[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	return p
}

func (s *copyStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.msgs))
	for k := range s.msgs {
		keys = append(keys, k)
	}
	return keys
}

func (s *copyStore) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msgs, key)
}

func (s *copyStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = map[string][]byte{}
}
