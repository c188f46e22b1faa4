package bench

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// SummarizeProfile reads a perf.data of cctvd (call graphs, user and
// kernel) and returns its top functions by self and by inclusive samples.
// perf 6.1 cannot name the functions of a Go binary here (it reports
// offsets into the file), so cctvd's frames are named with go tool
// addr2line, from the offset plus the text segment's address.
func SummarizeProfile(data, binary string) (string, error) {
	base, err := textBase(binary)
	if err != nil {
		return "", err
	}
	out, err := exec.Command("perf", "script", "-i", data, "-F", "ip,sym,dso").Output()
	if err != nil {
		return "", fmt.Errorf("perf script: %w", err)
	}
	type frame struct {
		addr uint64 // cctvd's, to resolve
		name string // otherwise
	}
	var samples [][]frame
	var cur []frame
	addrs := map[uint64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			if len(cur) > 0 {
				samples = append(samples, cur)
				cur = nil
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dso := f[len(f)-1]
		if strings.HasSuffix(dso, "/"+binaryName(binary)+")") {
			a, err := strconv.ParseUint(f[0], 16, 64)
			if err == nil {
				a += base
				addrs[a] = true
				cur = append(cur, frame{addr: a})
				continue
			}
		}
		name := strings.Join(f[1:len(f)-1], " ")
		if strings.Contains(dso, "kernel") {
			name = "[k] " + name
		}
		cur = append(cur, frame{name: name})
	}
	if len(cur) > 0 {
		samples = append(samples, cur)
	}
	names, err := addr2line(binary, addrs)
	if err != nil {
		return "", err
	}
	self, incl := map[string]int{}, map[string]int{}
	for _, s := range samples {
		seen := map[string]bool{}
		for i, fr := range s {
			n := fr.name
			if fr.addr != 0 {
				n = names[fr.addr]
			}
			if i == 0 {
				self[n]++
			}
			if !seen[n] {
				seen[n] = true
				incl[n]++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples of cctvd (perf record -F 999 -g; user and kernel)\n\nby self samples:\n", len(samples))
	top(&b, self, len(samples), 20)
	b.WriteString("\nby inclusive samples (the function or what it called):\n")
	top(&b, incl, len(samples), 45)
	return b.String(), nil
}

func binaryName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func top(b *strings.Builder, m map[string]int, total, n int) {
	type kv struct {
		k string
		v int
	}
	var s []kv
	for k, v := range m {
		s = append(s, kv{k, v})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].v > s[j].v || (s[i].v == s[j].v && s[i].k < s[j].k) })
	for i, e := range s {
		if i == n {
			break
		}
		fmt.Fprintf(b, "  %5.1f%%  %s\n", 100*float64(e.v)/float64(max(total, 1)), e.k)
	}
}

// textBase is the address of the binary's first loadable segment.
func textBase(binary string) (uint64, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			return p.Vaddr - p.Off, nil
		}
	}
	return 0, fmt.Errorf("%s: no loadable segment", binary)
}

// addr2line names addresses of a Go binary.
func addr2line(binary string, addrs map[uint64]bool) (map[uint64]string, error) {
	var in bytes.Buffer
	var order []uint64
	for a := range addrs {
		order = append(order, a)
		fmt.Fprintf(&in, "0x%x\n", a)
	}
	cmd := exec.Command("go", "tool", "addr2line", binary)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool addr2line: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	names := map[uint64]string{}
	for i, a := range order {
		if 2*i < len(lines) {
			names[a] = lines[2*i]
		}
	}
	return names, nil
}
