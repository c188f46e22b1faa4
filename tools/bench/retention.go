package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"

	"github.com/cctvd/cctvd/internal/fixture"
)

// retention runs the retention package's decision benchmark and reads it.
func (b *bench) retention(ctx context.Context) error {
	root, err := fixture.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkDecide", "-benchtime", "300x",
		"-count", strconv.Itoa(b.opts.Repeats), "./retention")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`BenchmarkDecide/rows=(\d+)\S*\s+\d+\s+([\d.]+) ns/op`)
	ms := map[string][]float64{}
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		ns, _ := strconv.ParseFloat(m[2], 64)
		ms[m[1]] = append(ms[m[1]], ns/1e6)
	}
	small, large := median(ms["10000"]), median(ms["100000"])
	if small == 0 || large == 0 {
		return fmt.Errorf("no benchmark results in:\n%s", out)
	}
	b.add(Row{Name: "retention decision, 10 000 catalog rows", Value: fmt.Sprintf("%.2f ms", small), Baseline: "-", Ratio: "-",
		Target: "well under 10 ms", Met: met(small < 10)})
	b.add(Row{Name: "retention decision, 100 000 catalog rows, vs 10 000", Value: fmt.Sprintf("%.2f ms", large),
		Baseline: fmt.Sprintf("%.2f ms", small), Ratio: fmt.Sprintf("%.2f", large/small), Target: "well under 10 ms, not growing",
		Met: met(large < 10 && large/small < 1.5)})
	return nil
}
