package scaletest

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/config"
	"gopkg.in/yaml.v3"
)

// Docker cannot run here, so deploy/compose.yaml is checked statically:
// parsed as Compose would after interpolation, and each ferry service's
// environment and command run through ferry's own flag parsing and
// validation, so a renamed flag or a bad value fails this test.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	NetworkMode string            `yaml:"network_mode"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// interpolate does Compose's variable substitution: $$, ${V}, ${V:-def},
// ${V-def}, ${V:?err}, ${V?err}. It returns the names of required
// variables that are missing.
func interpolate(s string, env map[string]string) (string, []string) {
	var missing []string
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := re.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		v, ok := env[name]
		unset := !ok || (strings.HasPrefix(op, ":") && v == "")
		switch {
		case !unset:
			return v
		case strings.HasSuffix(op, "-"):
			return arg
		case strings.HasSuffix(op, "?"):
			missing = append(missing, name)
		}
		return ""
	})
	return out, missing
}

func loadCompose(t *testing.T, env map[string]string) (composeFile, []string, string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, missing := interpolate(string(raw), env)
	var cf composeFile
	if err := yaml.Unmarshal([]byte(text), &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return cf, missing, dir
}

// flagsOf registers a command's flags the way cmd/ferry does.
func flagsOf(cmd string) (*flag.FlagSet, *config.Serve) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := config.DefaultServe()
	switch cmd {
	case "serve":
		cfg.Flags(fs)
	case "turn":
		cfg.TURN.TURNFlags(fs)
		fs.String("log-level", "info", "")
	}
	return fs, &cfg
}

func TestComposeFile(t *testing.T) {
	env := map[string]string{
		"FERRY_PUBLIC_URL":    "https://ferry.example.org",
		"FERRY_TURN_HOST":     "turn.example.org",
		"FERRY_TURN_SECRET":   "0123456789abcdef0123456789abcdef",
		"FERRY_TURN_RELAY_IP": "203.0.113.10",
	}
	cf, missing, dir := loadCompose(t, env)
	if len(missing) != 0 {
		t.Fatalf("required variables missing with a complete environment: %v", missing)
	}
	// Without the deployment's settings Compose must refuse to start,
	// rather than run with an empty secret or public URL.
	_, missing, _ = loadCompose(t, map[string]string{})
	for _, v := range []string{"FERRY_PUBLIC_URL", "FERRY_TURN_SECRET", "FERRY_TURN_HOST", "FERRY_TURN_RELAY_IP"} {
		if !slices.Contains(missing, v) {
			t.Errorf("%s is not required (${%s:?…}): Compose would start without it", v, v)
		}
	}

	root := filepath.Dir(dir)
	// The services' commands are arguments to the image's entrypoint,
	// which must be the ferry binary.
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatalf("the Dockerfile the services build from: %v", err)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["[^"]*/ferry"\]`).Match(df) {
		t.Error("the Dockerfile's ENTRYPOINT is not the ferry binary; the services' commands assume it")
	}
	// `go mod download` reads the go.mod of every module replaced by a
	// directory (the patched pion/webrtc): the build stage must copy those
	// first.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	before, _, found := strings.Cut(string(df), "RUN go mod download")
	var copied []string // what the build stage copies before the download
	for _, c := range regexp.MustCompile(`(?m)^COPY ([^-\s]\S*) `).FindAllStringSubmatch(before, -1) {
		copied = append(copied, strings.TrimSuffix(strings.TrimPrefix(c[1], "./"), "/"))
	}
	for _, m := range regexp.MustCompile(`(?m)=> \./(\S+)`).FindAllStringSubmatch(string(gomod), -1) {
		ok := false
		for _, c := range copied {
			ok = ok || c == "." || m[1] == c || strings.HasPrefix(m[1], c+"/")
		}
		if !found || !ok {
			t.Errorf("the Dockerfile does not copy %s (a go.mod replacement) before `go mod download`", m[1])
		}
	}
	var serves []string
	secrets := map[string]string{}
	for name, svc := range cf.Services {
		if len(svc.Command) == 0 || (svc.Command[0] != "serve" && svc.Command[0] != "turn") {
			continue
		}
		// Every ferry service is built from the Dockerfile at the
		// repository root.
		if svc.Build == nil || filepath.Join(dir, svc.Build.Context) != root || svc.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: build %+v, want context .. (the repository root) and the Dockerfile there", name, svc.Build)
		}
		fs, cfg := flagsOf(svc.Command[0])
		known := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { known[config.EnvName(f.Name)] = true })
		for k := range svc.Environment {
			if !known[k] {
				t.Errorf("%s: %s is not a `ferry %s` setting", name, k, svc.Command[0])
			}
		}
		lookup := func(k string) (string, bool) { v, ok := svc.Environment[k]; return v, ok }
		if err := config.Parse(fs, svc.Command[1:], lookup); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		secrets[name] = cfg.TURN.Secret
		if svc.Command[0] == "turn" {
			if err := cfg.TURN.ValidateStandalone(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if svc.NetworkMode != "host" {
				t.Errorf("%s: network_mode %q; relay candidates need the host's addresses and ports", name, svc.NetworkMode)
			}
			if !strings.HasSuffix(cfg.TURN.Listen, ":3478") {
				t.Errorf("%s: listens on %q, the instances hand out port 3478", name, cfg.TURN.Listen)
			}
			continue
		}
		serves = append(serves, name)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if cfg.PublicURL != env["FERRY_PUBLIC_URL"] {
			t.Errorf("%s: public URL %q", name, cfg.PublicURL)
		}
		// Redis is a service of this file, healthy before ferry starts.
		u, err := url.Parse(cfg.Redis)
		if err != nil || u.Hostname() == "" {
			t.Errorf("%s: redis URL %q", name, cfg.Redis)
			continue
		}
		rs, ok := cf.Services[u.Hostname()]
		if !ok || rs.Healthcheck == nil {
			t.Errorf("%s: redis host %q is not a service with a healthcheck", name, u.Hostname())
		}
		if svc.DependsOn[u.Hostname()].Condition != "service_healthy" {
			t.Errorf("%s: does not wait for %s to be healthy", name, u.Hostname())
		}
		if len(rs.Ports) != 0 {
			t.Errorf("redis publishes ports %v; keep it private to the compose network", rs.Ports)
		}
		// No bundled relay: the shared one, by the name clients use.
		if cfg.TURN.Listen != "" {
			t.Errorf("%s: bundled TURN on %q next to the shared relay", name, cfg.TURN.Listen)
		}
		for _, want := range []string{"turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp"} {
			if !slices.Contains(cfg.TURN.URLs, want) {
				t.Errorf("%s: TURN URLs %v lack %s", name, cfg.TURN.URLs, want)
			}
		}
		if cfg.Addr != ":8080" || len(svc.Ports) != 1 || !strings.HasSuffix(svc.Ports[0], ":8080") {
			t.Errorf("%s: listens on %q, publishes %v", name, cfg.Addr, svc.Ports)
		}
	}
	slices.Sort(serves)
	if fmt.Sprint(serves) != "[ferry-a ferry-b]" {
		t.Fatalf("ferry serve services %v, want ferry-a and ferry-b", serves)
	}
	if a, b := cf.Services["ferry-a"].Ports[0], cf.Services["ferry-b"].Ports[0]; a == b {
		t.Errorf("both instances publish %s", a)
	}
	for name, s := range secrets {
		if s != env["FERRY_TURN_SECRET"] {
			t.Errorf("%s: TURN secret %q, want the shared FERRY_TURN_SECRET", name, s)
		}
	}
	if _, ok := secrets["turn"]; !ok {
		t.Error("no `ferry turn` service")
	}
}
