// Command mutate runs gremlins (mutation testing) on the packages whose
// tests need no server, one package at a time, and prints a table of test
// efficacy per package: killed / (killed + lived) mutants, as gremlins
// counts it. It exits 1 when a package with a target is below it.
//
//	go run ./scripts/mutate                  every package in the table below
//	go run ./scripts/mutate retention gaplog  just these
//	go run ./scripts/mutate -diff main        only the lines changed since main
//
// `make mutate` builds the pinned gremlins first (scripts/deps.sh --mutate).
// The JSON reports and each run's output are kept in -out; the mutants that
// lived are listed under the table, file:line and kind, for the next test
// to kill.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// target is one package under mutation.
type target struct {
	pkg string
	// goal is the efficacy the package must reach (percent); 0: reported only.
	goal float64
	// files, if set, are the only files mutated (the decision logic of a
	// package whose other code needs servers to test).
	files []string
	// tests, if set, restricts the tests run for each mutant to those that
	// need no server (a go test -run pattern).
	tests string
	note  string
}

var targets = []target{
	{pkg: "segment", goal: 90},
	{pkg: "catalog", goal: 90},
	{pkg: "config", goal: 90},
	{pkg: "internal/redact", goal: 90},
	{pkg: "gaplog", goal: 90},
	{pkg: "retention", goal: 90},
	{pkg: "uploader", files: []string{"errors.go", "uploader.go", "hash.go"},
		tests: "^(TestRetryDelay|TestHashFile|TestClassify.*)$",
		note:  "decision logic: classify, retryDelay, hashing"},
	{pkg: "supervisor", files: []string{"progress.go", "process.go", "ffmpeg.go", "encoding.go"},
		tests: "^(TestProgressParser|TestWatchdog|TestEpoch.*|TestClassify|TestArgs|TestLineWriter.*|TestCanCopy)$",
		note:  "decision logic: progress parser, watchdog, exit classes, ffmpeg arguments"},
}

// report is the part of gremlins' JSON output read here.
type report struct {
	Files []struct {
		FileName  string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
	Elapsed float64 `json:"elapsed_time"`
}

type result struct {
	target
	killed, lived, timedOut, notCovered, notViable int
	elapsed                                        time.Duration
	livedAt                                        []string
	err                                            error
}

func (r result) efficacy() float64 {
	if r.killed+r.lived == 0 {
		return 100
	}
	return 100 * float64(r.killed) / float64(r.killed+r.lived)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	tools := os.Getenv("CCTVD_TOOLS")
	if tools == "" {
		cache, _ := os.UserCacheDir()
		tools = filepath.Join(cache, "cctvd-tools")
	}
	gremlins := fs.String("gremlins", filepath.Join(tools, "bin", "gremlins"), "the gremlins binary (scripts/deps.sh --mutate builds it)")
	out := fs.String("out", filepath.Join(".cache", "mutate"), "folder for gremlins' JSON reports and output")
	workers := fs.Int("workers", 0, "gremlins workers (0: gremlins' default, one per core)")
	diff := fs.String("diff", "", "mutate only the lines changed since this git ref (gremlins --diff): quick, before a change is committed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	todo := targets
	if fs.NArg() > 0 {
		todo = nil
		for _, name := range fs.Args() {
			i := slices.IndexFunc(targets, func(t target) bool { return t.pkg == strings.TrimPrefix(name, "./") })
			if i < 0 {
				return fmt.Errorf("%s is not in the table of packages under mutation", name)
			}
			todo = append(todo, targets[i])
		}
	}
	if _, err := os.Stat(*gremlins); err != nil {
		return fmt.Errorf("gremlins: %w (run scripts/deps.sh --mutate)", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	var results []result
	for _, t := range todo {
		fmt.Fprintf(os.Stderr, "mutate: %s ...\n", t.pkg)
		r := unleash(ctx, *gremlins, *out, *workers, *diff, t)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %s: %v\n", t.pkg, r.err)
		}
		results = append(results, r)
	}
	failed := print(stdout, results, time.Since(start))
	if failed > 0 {
		return fmt.Errorf("%d package(s) below their goal or not measured", failed)
	}
	return nil
}

// unleash runs gremlins on one package.
func unleash(ctx context.Context, gremlins, out string, workers int, diff string, t target) result {
	r := result{target: t}
	name := strings.ReplaceAll(t.pkg, "/", "-")
	jsonPath, _ := filepath.Abs(filepath.Join(out, name+".json"))
	os.Remove(jsonPath)
	// A mutant's tests time out after this many times the tests' own
	// time (gremlins' default is 3): on a loaded machine, 3 turns slow
	// runs into time-outs, which count neither way.
	args := []string{"unleash", "--output", jsonPath, "--timeout-coefficient", "10"}
	if workers > 0 {
		args = append(args, "--workers", fmt.Sprint(workers))
	}
	if diff != "" {
		args = append(args, "--diff", diff)
	}
	if len(t.files) > 0 {
		srcs, _ := filepath.Glob(filepath.Join(t.pkg, "*.go"))
		for _, s := range srcs {
			base := filepath.Base(s)
			if !strings.HasSuffix(base, "_test.go") && !slices.Contains(t.files, base) {
				args = append(args, "--exclude-files", "^"+strings.ReplaceAll(base, ".", `\.`)+"$")
			}
		}
	}
	args = append(args, "./"+t.pkg)
	cmd := exec.CommandContext(ctx, gremlins, args...)
	cmd.Env = os.Environ()
	if t.tests != "" {
		// go test reads its -run from GOFLAGS too: gremlins' coverage run
		// and every mutant's run see only the tests that need no server.
		cmd.Env = append(cmd.Env, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -run="+t.tests))
	}
	logf, err := os.Create(filepath.Join(out, name+".log"))
	if err != nil {
		r.err = err
		return r
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	begin := time.Now()
	err = cmd.Run()
	r.elapsed = time.Since(begin)
	if err != nil {
		r.err = fmt.Errorf("gremlins: %w (see %s)", err, logf.Name())
		return r
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		r.err = err
		return r
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		r.err = fmt.Errorf("%s: %w", jsonPath, err)
		return r
	}
	for _, f := range rep.Files {
		for _, m := range f.Mutations {
			switch m.Status {
			case "KILLED":
				r.killed++
			case "LIVED":
				r.lived++
				r.livedAt = append(r.livedAt, fmt.Sprintf("%s/%s:%d:%d %s", t.pkg, f.FileName, m.Line, m.Column, m.Type))
			case "TIMED OUT":
				r.timedOut++
			case "NOT COVERED":
				r.notCovered++
			case "NOT VIABLE":
				r.notViable++
			}
		}
	}
	if r.killed+r.lived+r.timedOut+r.notCovered+r.notViable == 0 && diff == "" {
		r.err = errors.New("gremlins found no mutant")
	}
	return r
}

// print writes the table (markdown, for docs/development.md) and the mutants that
// lived; it returns how many packages missed their goal or could not be
// measured.
func print(w io.Writer, results []result, took time.Duration) int {
	failed := 0
	rows := [][]string{{"package", "killed", "lived", "timed out", "not covered", "efficacy", "goal", "met", "time", "mutated"}}
	for _, r := range results {
		goal, met := "-", "-"
		eff := fmt.Sprintf("%.1f %%", r.efficacy())
		if r.err != nil {
			eff = "error"
		}
		if r.goal > 0 {
			goal = fmt.Sprintf("≥ %.0f %%", r.goal)
			met = "yes"
			if r.err != nil || r.efficacy() < r.goal {
				met = "no"
				failed++
			}
		} else if r.err != nil {
			failed++
		}
		scope := "every file"
		if r.note != "" {
			scope = r.note
		}
		rows = append(rows, []string{r.pkg, fmt.Sprint(r.killed), fmt.Sprint(r.lived), fmt.Sprint(r.timedOut), fmt.Sprint(r.notCovered),
			eff, goal, met, r.elapsed.Round(time.Second).String(), scope})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for n, row := range rows {
		for i, c := range row {
			fmt.Fprintf(w, "| %s%s ", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		fmt.Fprintln(w, "|")
		if n == 0 {
			for i := range row {
				fmt.Fprintf(w, "|%s", strings.Repeat("-", width[i]+2))
			}
			fmt.Fprintln(w, "|")
		}
	}
	fmt.Fprintf(w, "\nefficacy = killed / (killed + lived), as gremlins counts it; timed-out mutants are neither. Took %s.\n", took.Round(time.Second))
	for _, r := range results {
		if len(r.livedAt) > 0 {
			fmt.Fprintf(w, "\nlived in %s:\n", r.pkg)
			for _, l := range r.livedAt {
				fmt.Fprintln(w, "  "+l)
			}
		}
	}
	return failed
}
