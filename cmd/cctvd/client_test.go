package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// client talks to a running daemon's API and keeps every response body,
// so the test can check that none holds a secret.
type client struct {
	t      *testing.T
	base   string
	token  string
	mu     sync.Mutex
	bodies bytes.Buffer
}

func newClient(t *testing.T, d *proc, token string) *client {
	t.Helper()
	line, _ := d.await(0, 30*time.Second, msgIs("API listening"))
	return &client{t: t, base: "http://" + line["address"].(string), token: token}
}

func (c *client) do(method, path string, header map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if method == "POST" { // as README says scripts do: without a token, a web page could not
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	c.mu.Lock()
	c.bodies.Write(body)
	c.mu.Unlock()
	return resp.StatusCode, body, resp.Header
}

// json does a request and decodes a JSON answer, checking the status.
func (c *client) json(method, path string, wantStatus int, v any) {
	c.t.Helper()
	status, body, h := c.do(method, path, nil)
	if status != wantStatus {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, status, body, wantStatus)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		c.t.Errorf("%s %s: Content-Type %q", method, path, h.Get("Content-Type"))
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
}

// jsonError checks that a request fails with status and a JSON error.
func (c *client) jsonError(method, path string, status int) string {
	c.t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	c.json(method, path, status, &e)
	if e.Error == "" {
		c.t.Errorf("%s %s: no error message", method, path)
	}
	return e.Error
}
