// Package config binds typed configuration to command-line flags and
// FERRY_* environment variables (flag > environment > default) and
// validates it at start-up.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("config: invalid")

// EnvName returns the environment variable for a flag: "turn-listen" ->
// "FERRY_TURN_LISTEN".
func EnvName(flagName string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable (lookup is os.LookupEnv if nil).
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := lookup(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s=%q: %v", ErrInvalid, EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Row is one line of the flags table in the README and --help.
type Row struct {
	Flag, Env, Default, Usage string
}

// Table lists fs's flags in name order.
func Table(fs *flag.FlagSet) []Row {
	var rows []Row
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = "—"
		}
		rows = append(rows, Row{Flag: "--" + f.Name, Env: EnvName(f.Name), Default: def, Usage: f.Usage})
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].Flag < rows[j].Flag })
	return rows
}

// Markdown renders rows as a Markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", r.Flag, r.Env, mdDefault(r.Default), strings.ReplaceAll(r.Usage, "|", `\|`))
	}
	return b.String()
}

func mdDefault(d string) string {
	if d == "—" {
		return d
	}
	return "`" + d + "`"
}

// List is a comma-separated list flag.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

func (l *List) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Bytes is a size flag: "0", "1500", "64KiB", "10MB", "2GiB".
type Bytes int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func (b *Bytes) String() string { return FormatBytes(int64(*b)) }

func (b *Bytes) Set(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) && len(s) > len(u.suffix) {
			num := strings.TrimSpace(s[:len(s)-len(u.suffix)])
			if _, err := strconv.ParseFloat(num, 64); err == nil {
				s, mult = num, u.mult
				break
			}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("not a size: %q (use e.g. 500MB or 2GiB)", s)
	}
	*b = Bytes(f * float64(mult))
	return nil
}

// FormatBytes prints n in the largest binary unit that divides it evenly.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// PortRange is "min-max" or empty.
type PortRange struct{ Min, Max uint16 }

func (p *PortRange) String() string {
	if p.Min == 0 && p.Max == 0 {
		return ""
	}
	return fmt.Sprintf("%d-%d", p.Min, p.Max)
}

func (p *PortRange) Set(s string) error {
	if s == "" {
		*p = PortRange{}
		return nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
		return fmt.Errorf("not a port range: %q (use e.g. 49152-65535)", s)
	}
	*p = PortRange{uint16(a), uint16(b)}
	return nil
}

// Duration validation helper.
func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: --%s must be positive", ErrInvalid, name)
	}
	return nil
}
