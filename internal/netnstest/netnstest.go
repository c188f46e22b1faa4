// Package netnstest gives tests a private network: two network namespaces
// joined by a veth pair, with addresses in 10.231.0.0/16, created with
// iproute2 and deleted when the test ends. Multicast sent inside them (a
// WS-Discovery probe) never reaches the machine's real network. It needs
// root; without it the test is skipped with a message saying so.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cctvd/cctvd/internal/testenv"
)

// NS is one end: a namespace, its veth interface and the interface's IPv4
// address.
type NS struct {
	Name, Iface, IP string
}

// Pair is two namespaces joined by a veth pair.
type Pair struct{ A, B NS }

// NewPair creates two namespaces, A and B, with a veth between them
// (A.IP and B.IP on one /24), and deletes them when the test ends.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.NeedsRoot(t, "cannot create network namespaces without root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is not installed: run `make deps`")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	subnet := fmt.Sprintf("10.231.%d", int(b[0])%250+1)
	p := &Pair{
		A: NS{Name: "cctvd-" + id + "-a", Iface: "cv" + id + "a", IP: subnet + ".1"},
		B: NS{Name: "cctvd-" + id + "-b", Iface: "cv" + id + "b", IP: subnet + ".2"},
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", p.A.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.A.Name).Run() })
	ip("netns", "add", p.B.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.B.Name).Run() })
	ip("link", "add", p.A.Iface, "netns", p.A.Name, "type", "veth", "peer", "name", p.B.Iface, "netns", p.B.Name)
	for _, ns := range []NS{p.A, p.B} {
		ip("-n", ns.Name, "addr", "add", ns.IP+"/24", "dev", ns.Iface)
		ip("-n", ns.Name, "link", "set", ns.Iface, "up")
		ip("-n", ns.Name, "link", "set", "lo", "up")
	}
	return p
}

// Do runs fn on an OS thread that has entered the namespace. Sockets fn
// opens belong to the namespace and keep working after fn returns, from
// any goroutine; goroutines fn starts do not run in the namespace.
func (ns NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Locked to this goroutine; unlocked only once back in the
		// original namespace, else the thread dies with the goroutine.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns.Name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave %s: %w", ns.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
