package onvif

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedirectsAreNotFollowed: a device (or whoever answers on its
// address) must not steer the client, and its WS-Security token, to
// another host or path: a 307 is an error, and the other host hears
// nothing.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	device := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/internal/admin", http.StatusTemporaryRedirect)
	}))
	defer device.Close()
	host, port, _ := net.SplitHostPort(device.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	c := New(Config{Host: host, Port: p, User: "admin", Password: "secret", Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.DeviceInformation(ctx); err == nil {
		t.Error("a call answered by a redirect succeeded")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect's target got %d requests", n)
	}
}
