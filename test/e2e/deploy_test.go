package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root, seen from this package's directory.
var repoRoot = filepath.Join("..", "..")

// composeFile is the part of docker-compose.yml the checks read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Ports       []string       `yaml:"ports"`
	Environment yaml.Node      `yaml:"environment"` // a map or a list of K=V
	Volumes     []string       `yaml:"volumes"`
	Secrets     []string       `yaml:"secrets"`
	Entrypoint  []string       `yaml:"entrypoint"`
	Command     []string       `yaml:"command"`
	DependsOn   map[string]any `yaml:"depends_on"`
	Networks    yaml.Node      `yaml:"networks"` // a list of names or a map name -> settings
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// networks returns the names of the networks the service joins, in either
// compose syntax; none means compose's default network.
func (s composeService) networks(t *testing.T) []string {
	t.Helper()
	var names []string
	switch s.Networks.Kind {
	case 0:
		return []string{"default"}
	case yaml.SequenceNode:
		if err := s.Networks.Decode(&names); err != nil {
			t.Fatalf("compose networks: %v", err)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.Networks.Content); i += 2 {
			names = append(names, s.Networks.Content[i].Value)
		}
	default:
		t.Fatalf("compose networks are neither a list nor a map")
	}
	return names
}

// env returns the service's environment as a map, in either compose syntax.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.Environment.Kind {
	case 0:
	case yaml.MappingNode:
		if err := s.Environment.Decode(&out); err != nil {
			t.Fatalf("compose environment: %v", err)
		}
	case yaml.SequenceNode:
		var list []string
		if err := s.Environment.Decode(&list); err != nil {
			t.Fatalf("compose environment: %v", err)
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	default:
		t.Fatalf("compose environment is neither a map nor a list")
	}
	return out
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("parsing docker-compose.yml: %v", err)
	}
	return c
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
}

// execForm decodes a JSON-array (exec form) argument; ok is false for the
// shell form.
func (d dockerInstr) execForm() ([]string, bool) {
	var argv []string
	if json.Unmarshal([]byte(strings.TrimSpace(d.Args)), &argv) != nil {
		return nil, false
	}
	return argv, true
}

// dockerStage is the instructions from one FROM to the next.
type dockerStage struct {
	From, Name string
	Instrs     []dockerInstr
}

func (s dockerStage) all(cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range s.Instrs {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func readDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstr{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			fields := strings.Fields(in.Args)
			st := dockerStage{From: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.Name = fields[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before FROM", in.Cmd)
			}
			return
		}
		stages[len(stages)-1].Instrs = append(stages[len(stages)-1].Instrs, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// composeGateway returns the gateway service and the host directory that
// compose mounts at /etc/authgateway.
func composeGateway(t *testing.T, c composeFile) (composeService, string) {
	t.Helper()
	svc, ok := c.Services["gateway"]
	if !ok {
		t.Fatalf("docker-compose.yml has no gateway service (services: %v)", slices.Sorted(maps.Keys(c.Services)))
	}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == "/etc/authgateway" {
			dir, err := filepath.Abs(filepath.Join(repoRoot, parts[0]))
			if err != nil {
				t.Fatal(err)
			}
			return svc, dir
		}
	}
	t.Fatalf("the gateway service mounts nothing at /etc/authgateway (volumes %q)", svc.Volumes)
	return svc, ""
}

// envMap is the gateway's environment as runCLI takes it, so that a CLI
// command resolves the config's ${VAR}s exactly as the gateway did.
func (g *Gateway) envMap() map[string]string {
	m := map[string]string{}
	for _, kv := range g.env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// gatewayYAML is the part of a gateway config the deploy checks read.
type gatewayYAML struct {
	Server struct {
		Listen          string `yaml:"listen"`
		AdminListen     string `yaml:"admin_listen"`
		ShutdownTimeout string `yaml:"shutdown_timeout"`
	} `yaml:"server"`
	Routes []struct {
		Upstream string `yaml:"upstream"`
	} `yaml:"routes"`
}

func readGatewayYAML(t *testing.T, path string) gatewayYAML {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g gatewayYAML
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return g
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

// containerPort is the container side of a compose port mapping
// ("8080:8080", "127.0.0.1:8080:8080/tcp", "8080").
func containerPort(mapping string) string {
	mapping, _, _ = strings.Cut(mapping, "/")
	parts := strings.Split(mapping, ":")
	return parts[len(parts)-1]
}

// composeSecrets runs the Makefile's compose-secrets target (as the README
// says, before `docker compose up`) in a temp directory and returns where
// each compose secret's file landed, by secret name.
func composeSecrets(t *testing.T, c composeFile) map[string]string {
	t.Helper()
	makefile, err := filepath.Abs(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if out, err := exec.Command("make", "-s", "-f", makefile, "-C", dir, "compose-secrets").CombinedOutput(); err != nil {
		t.Fatalf("make compose-secrets: %v\n%s", err, out)
	}
	files := map[string]string{}
	for name, sec := range c.Secrets {
		if sec.File == "" {
			t.Fatalf("compose secret %q has no file", name)
		}
		files[name] = filepath.Join(dir, filepath.Clean(sec.File))
		if _, err := os.Stat(files[name]); err != nil {
			t.Errorf("make compose-secrets did not write compose secret %q (%s): %v", name, sec.File, err)
		}
	}
	return files
}

// composeEnv is the environment the gateway container gets, with every
// /run/secrets/NAME replaced by the file of secret NAME in files (from
// composeSecrets).
func composeEnv(t *testing.T, svc composeService, files map[string]string) map[string]string {
	t.Helper()
	env := svc.env(t)
	for k, v := range env {
		if name, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			env[k] = files[name]
		}
	}
	return env
}

// readFileTrim reads a secret file as the gateway does (trailing newline
// dropped).
func readFileTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

func TestDockerCompose(t *testing.T) {
	c := readCompose(t)
	svc, mountDir := composeGateway(t, c)
	cfgPath := filepath.Join(mountDir, "gateway.yaml")
	cfg := readGatewayYAML(t, cfgPath)
	env := svc.env(t)
	secrets := composeSecrets(t, c)

	t.Run("environment the config needs", func(t *testing.T) {
		for _, k := range []string{"ACCESS_SECRET_FILE", "REDIS_URL_FILE"} {
			// Each secret file must be a compose secret given to the service.
			name, ok := strings.CutPrefix(env[k], "/run/secrets/")
			if !ok || !slices.Contains(svc.Secrets, name) {
				t.Errorf("%s = %q, want /run/secrets/<one of the service's secrets %q>", k, env[k], svc.Secrets)
			}
			if _, ok := c.Secrets[name]; !ok {
				t.Errorf("secret %q is not defined at the top level of docker-compose.yml", name)
			}
		}
		if v, ok := env["REDIS_URL"]; ok {
			t.Errorf("REDIS_URL = %q in the environment: the URL holds Redis's password, keep it in a secret", v)
		}
	})

	t.Run("mounted config validates", func(t *testing.T) {
		res := runCLI(t, t.TempDir(), composeEnv(t, svc, secrets), "validate", "-config", cfgPath)
		if res.Code != 0 {
			t.Errorf("authgateway validate -config %s: exit %d\nstdout %q\nstderr %q", cfgPath, res.Code, res.Stdout, res.Stderr)
		}
	})

	t.Run("published port is the listen port", func(t *testing.T) {
		host, port, err := net.SplitHostPort(cfg.Server.Listen)
		if err != nil {
			t.Fatalf("server.listen %q: %v", cfg.Server.Listen, err)
		}
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("server.listen %q binds %s only: unreachable through the published port", cfg.Server.Listen, host)
		}
		var published []string
		for _, p := range svc.Ports {
			published = append(published, containerPort(p))
		}
		if !slices.Contains(published, port) {
			t.Errorf("server.listen port %s is not published (ports %q)", port, svc.Ports)
		}
		// The admin listener (metrics, readiness) is for the platform, not
		// the public.
		if admin := portOf(t, cfg.Server.AdminListen); slices.Contains(published, admin) {
			t.Errorf("the admin port %s is published (ports %q): /metrics would be public", admin, svc.Ports)
		}
	})

	t.Run("healthcheck runs authgateway healthcheck on the admin port", func(t *testing.T) {
		test := svc.Healthcheck.Test
		// Exec form: the runtime image has no shell for CMD-SHELL.
		if len(test) < 3 || test[0] != "CMD" || filepath.Base(test[1]) != "authgateway" || test[2] != "healthcheck" {
			t.Fatalf("healthcheck.test = %q, want [CMD /path/authgateway healthcheck ...]", test)
		}
		if bin := finalStageBinary(t, readDockerfile(t)); test[1] != bin {
			t.Errorf("healthcheck runs %s; the image has authgateway at %s", test[1], bin)
		}
		if slices.ContainsFunc(test[3:], func(a string) bool { return strings.HasPrefix(a, "-url") }) {
			t.Skip("healthcheck names its URL itself")
		}
		// Without -url it asks /healthz on server.admin_listen of the
		// config it loads: run it on the mounted config against a listener
		// on that port, when the port is free here.
		host, port, _ := net.SplitHostPort(cfg.Server.AdminListen)
		if host != "" && host != "0.0.0.0" && host != "::" && host != "127.0.0.1" && host != "localhost" {
			t.Errorf("admin_listen %q: not reachable on the container's loopback", cfg.Server.AdminListen)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Skipf("admin port %s busy on this machine: %v", port, err)
		}
		var hits atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				hits.Add(1)
			}
		}))
		srv.Listener = ln
		srv.Start()
		defer srv.Close()
		res := runCLI(t, t.TempDir(), composeEnv(t, svc, secrets), "healthcheck", "-config", cfgPath)
		if res.Code != 0 || hits.Load() != 1 {
			t.Errorf("healthcheck on the compose config: exit %d, /healthz asked %d times; want 0 and 1\n%s",
				res.Code, hits.Load(), res.Stderr)
		}
	})

	t.Run("upstreams and Redis are compose services", func(t *testing.T) {
		for _, r := range cfg.Routes {
			u, err := url.Parse(r.Upstream)
			if err != nil {
				t.Errorf("upstream %q: %v", r.Upstream, err)
				continue
			}
			if _, ok := c.Services[u.Hostname()]; !ok {
				t.Errorf("upstream %q: no compose service named %q", r.Upstream, u.Hostname())
			}
		}
		redisURL := readFileTrim(t, composeEnv(t, svc, secrets)["REDIS_URL_FILE"])
		if u, err := url.Parse(redisURL); err != nil || c.Services[u.Hostname()].Image == "" {
			t.Errorf("the Redis URL secret does not name a compose service (host %q)", u.Hostname())
		}
		if _, ok := svc.DependsOn["redis"]; !ok {
			t.Errorf("the gateway does not depend on redis")
		}
	})

	t.Run("networks: only the gateway reaches the app and Redis", func(t *testing.T) {
		nets := map[string][]string{}
		for name, s := range c.Services {
			nets[name] = s.networks(t)
		}
		for _, n := range []string{"edge", "backend", "state"} {
			if !slices.Contains(nets["gateway"], n) {
				t.Errorf("the gateway is not on network %q (networks %q)", n, nets["gateway"])
			}
		}
		if !slices.Equal(nets["app"], []string{"backend"}) {
			t.Errorf("the app is on %q, want only backend", nets["app"])
		}
		if !slices.Equal(nets["redis"], []string{"state"}) {
			t.Errorf("redis is on %q, want only state", nets["redis"])
		}
		// No two services but the gateway share a network (each pair once).
		for a, as := range nets {
			for b, bs := range nets {
				if a >= b || a == "gateway" || b == "gateway" {
					continue
				}
				for _, n := range as {
					if slices.Contains(bs, n) {
						t.Errorf("%s and %s share network %q: only the gateway may reach either", a, b, n)
					}
				}
			}
		}
		for _, n := range []string{"backend", "state"} {
			if !c.Networks[n].Internal {
				t.Errorf("network %q is not internal: containers on it reach the outside", n)
			}
		}
	})

	t.Run("only the gateway's main port is published", func(t *testing.T) {
		for name, s := range c.Services {
			if name != "gateway" && len(s.Ports) > 0 {
				t.Errorf("service %s publishes %q", name, s.Ports)
			}
		}
		if len(svc.Ports) != 1 || containerPort(svc.Ports[0]) != portOf(t, cfg.Server.Listen) {
			t.Errorf("the gateway publishes %q, want only its listen port %s", svc.Ports, portOf(t, cfg.Server.Listen))
		}
	})

	t.Run("Redis requires the password from a secret", func(t *testing.T) {
		r := c.Services["redis"]
		conf := composeRedisConf(t, r)
		if !slices.Contains(r.Secrets, conf) {
			t.Fatalf("redis includes /run/secrets/%s, not one of its secrets %q", conf, r.Secrets)
		}
		pass, ok := strings.CutPrefix(readFileTrim(t, secrets[conf]), "requirepass ")
		if !ok || len(pass) < 32 {
			t.Fatalf("secret %s is not a requirepass line with a long password", conf)
		}
		u, err := url.Parse(readFileTrim(t, composeEnv(t, svc, secrets)["REDIS_URL_FILE"]))
		if p, _ := u.User.Password(); err != nil || p != pass {
			t.Errorf("the gateway's Redis URL does not carry the password Redis requires")
		}
	})

	t.Run("stop_grace_period above shutdown_timeout", func(t *testing.T) {
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		if err != nil {
			t.Fatalf("gateway stop_grace_period %q: %v (docker's default, 10s, cuts the drain short)", svc.StopGracePeriod, err)
		}
		drain := 20 * time.Second // server.shutdown_timeout's default
		if cfg.Server.ShutdownTimeout != "" {
			if drain, err = time.ParseDuration(cfg.Server.ShutdownTimeout); err != nil {
				t.Fatalf("server.shutdown_timeout %q: %v", cfg.Server.ShutdownTimeout, err)
			}
		}
		if grace <= drain {
			t.Errorf("stop_grace_period %v is not above server.shutdown_timeout %v: docker kills the gateway mid-drain", grace, drain)
		}
	})
}

// composeRedisConf is the secret that the redis service's command includes
// (redis-server --include /run/secrets/NAME), failing the test without one.
func composeRedisConf(t *testing.T, r composeService) string {
	t.Helper()
	if i := slices.Index(r.Command, "--include"); i >= 0 && i+1 < len(r.Command) {
		if name, ok := strings.CutPrefix(r.Command[i+1], "/run/secrets/"); ok {
			return name
		}
	}
	t.Fatalf("redis command %q includes no /run/secrets/ file: it would start without a password", r.Command)
	return ""
}

// finalStageBinary is where the runtime image puts the authgateway binary.
func finalStageBinary(t *testing.T, stages []dockerStage) string {
	t.Helper()
	final := stages[len(stages)-1]
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.Args)
		if len(f) >= 2 && filepath.Base(f[len(f)-2]) == "authgateway" {
			return f[len(f)-1]
		}
	}
	t.Fatalf("the final stage copies no authgateway binary")
	return ""
}

func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a multi-stage build", len(stages))
	}
	final := stages[len(stages)-1]
	bin := finalStageBinary(t, stages)
	_, mountDir := composeGateway(t, readCompose(t))
	cfg := readGatewayYAML(t, filepath.Join(mountDir, "gateway.yaml"))

	t.Run("static, reproducible build", func(t *testing.T) {
		var builds int
		for _, st := range stages[:len(stages)-1] {
			for _, in := range st.all("RUN") {
				for _, cmd := range strings.Split(in.Args, "&&") {
					if !strings.Contains(cmd, "go build") {
						continue
					}
					builds++
					if !strings.Contains(cmd, "CGO_ENABLED=0") || !strings.Contains(cmd, "-trimpath") {
						t.Errorf("build step without CGO_ENABLED=0 and -trimpath: %s", strings.TrimSpace(cmd))
					}
				}
			}
		}
		if builds == 0 {
			t.Errorf("no go build in the build stage(s)")
		}
		if !slices.ContainsFunc(final.all("COPY"), func(in dockerInstr) bool { return strings.HasPrefix(in.Args, "--from=") }) {
			t.Errorf("the final stage copies nothing from a build stage")
		}
	})

	t.Run("runs as non-root", func(t *testing.T) {
		users := final.all("USER")
		if len(users) == 0 {
			t.Fatalf("the final stage has no USER: it would run as root")
		}
		user, _, _ := strings.Cut(users[len(users)-1].Args, ":")
		if user == "root" || user == "0" {
			t.Errorf("final USER is %q, want a non-root user", users[len(users)-1].Args)
		}
	})

	t.Run("exposes the listen port", func(t *testing.T) {
		var exposed []string
		for _, in := range final.all("EXPOSE") {
			for _, p := range strings.Fields(in.Args) {
				p, _, _ = strings.Cut(p, "/")
				exposed = append(exposed, p)
			}
		}
		if port := portOf(t, cfg.Server.Listen); !slices.Contains(exposed, port) {
			t.Errorf("EXPOSE %q lacks the listen port %s", exposed, port)
		}
	})

	t.Run("ships a config at /etc/authgateway/gateway.yaml and uses it", func(t *testing.T) {
		var src string
		for _, in := range final.all("COPY") {
			f := strings.Fields(in.Args)
			if len(f) >= 2 && f[len(f)-1] == "/etc/authgateway/gateway.yaml" {
				src = f[len(f)-2]
			}
		}
		if src == "" {
			t.Fatalf("the final stage copies no config to /etc/authgateway/gateway.yaml")
		}
		if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
			t.Errorf("COPY source %s: %v", src, err)
		}
		var cfgEnv string
		for _, in := range final.all("ENV") {
			if v, ok := strings.CutPrefix(in.Args, "AUTHGATEWAY_CONFIG="); ok {
				cfgEnv = v
			}
		}
		if cfgEnv != "/etc/authgateway/gateway.yaml" {
			t.Errorf("AUTHGATEWAY_CONFIG = %q, want /etc/authgateway/gateway.yaml so serve and healthcheck find the config", cfgEnv)
		}
	})

	t.Run("HEALTHCHECK runs authgateway healthcheck", func(t *testing.T) {
		hcs := final.all("HEALTHCHECK")
		if len(hcs) != 1 {
			t.Fatalf("%d HEALTHCHECK instructions in the final stage, want 1", len(hcs))
		}
		_, cmd, ok := strings.Cut(hcs[0].Args, "CMD ")
		argv, exec := dockerInstr{Args: cmd}.execForm()
		if !ok || !exec {
			t.Fatalf("HEALTHCHECK %q: want CMD in exec form (the runtime image has no shell)", hcs[0].Args)
		}
		if len(argv) < 2 || argv[0] != bin || argv[1] != "healthcheck" {
			t.Errorf("HEALTHCHECK runs %q, want [%s healthcheck]", argv, bin)
		}
	})

	t.Run("entrypoint is the gateway", func(t *testing.T) {
		eps := final.all("ENTRYPOINT")
		if len(eps) == 0 {
			t.Fatalf("no ENTRYPOINT")
		}
		if argv, ok := eps[len(eps)-1].execForm(); !ok || len(argv) == 0 || argv[0] != bin {
			t.Errorf("ENTRYPOINT %s, want [%q ...] in exec form (signals reach the gateway)", eps[len(eps)-1].Args, bin)
		}
	})
}

// TestHealthcheckCommand runs `authgateway healthcheck` against a running
// gateway and against a closed port.
func TestHealthcheckCommand(t *testing.T) {
	g, _, _ := startStandard(t)
	closed := freePort(t)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"admin listener from the config", []string{"healthcheck", "-config", g.ConfigPath}, 0},
		{"explicit url", []string{"healthcheck", "-url", "http://" + g.AdminAddr + "/healthz"}, 0},
		{"closed port", []string{"healthcheck", "-url", "http://" + closed + "/healthz"}, 1},
		{"not a health endpoint (404)", []string{"healthcheck", "-url", "http://" + g.AdminAddr + "/nothing-here"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, g.Dir, g.envMap(), tc.args...)
			if res.Code != tc.code {
				t.Errorf("authgateway %q: exit %d, want %d\nstdout %q\nstderr %q", tc.args, res.Code, tc.code, res.Stdout, res.Stderr)
			}
		})
	}
	t.Run("config whose admin port is closed", func(t *testing.T) {
		cfg, err := withListeners(strings.ReplaceAll(standardConfig, "UPSTREAM", "http://127.0.0.1:9"), freePort(t), closed)
		if err != nil {
			t.Fatal(err)
		}
		p := writeConfig(t, "gateway.yaml", cfg)
		if res := runCLI(t, g.Dir, g.envMap(), "healthcheck", "-config", p); res.Code != 1 {
			t.Errorf("exit %d, want 1\n%s", res.Code, res.Stderr)
		}
	})
}

// TestHealthcheckDuringBadEdit: a config edit that fails to load leaves the
// gateway serving (live reload keeps the old config), so the container's
// health check, which reads the same file to find the admin port, must still
// report it healthy, or the orchestrator restarts a working gateway into a
// config it cannot load.
func TestHealthcheckDuringBadEdit(t *testing.T) {
	up := newUpstream(t, 0)
	g := startGateway(t, strings.ReplaceAll(reloadV0, "UPSTREAM", up.URL), map[string]string{"ACCESS_SECRET": randomSecret(t)})
	writeAtomic(t, g.ConfigPath, reloadVersion(reloadBroken, g, up))
	pollUntil(t, "gateway reports the broken edit", func() error {
		if getReadyz(t, g).LastReloadError == "" {
			return errors.New("last_reload_error empty")
		}
		return nil
	})
	if res := runCLI(t, g.Dir, g.envMap(), "healthcheck", "-url", "http://"+g.AdminAddr+"/healthz"); res.Code != 0 {
		t.Fatalf("the gateway itself is not healthy: %s", res.Stderr)
	}
	if res := runCLI(t, g.Dir, g.envMap(), "healthcheck", "-config", g.ConfigPath); res.Code != 0 {
		t.Errorf("healthcheck -config (as in the Dockerfile and compose): exit %d while the gateway serves and /healthz is 200; want 0\nstderr %q",
			res.Code, res.Stderr)
	}
}

// TestComposeSecretReadableByImageUser: docker compose (without swarm)
// bind-mounts a file secret with its host owner and mode; uid/gid/mode in
// the compose file are not applied to file secrets. The images run as
// non-root users that own nothing on the host (65532 for the gateway, redis
// for Redis), so every secret file `make compose-secrets` writes must be
// readable by "other", or its container cannot read it and does not start.
func TestComposeSecretReadableByImageUser(t *testing.T) {
	c := readCompose(t)
	for name, file := range composeSecrets(t, c) {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o004 == 0 {
			t.Errorf("secret %s: make writes %s with mode %v: the image's USER (not the file's owner) cannot read the bind-mounted secret; "+
				"want it world-readable (keep .dev/ itself 0700 on the host)", name, c.Secrets[name].File, fi.Mode().Perm())
		}
		if dir, err := os.Stat(filepath.Dir(file)); err != nil || dir.Mode().Perm() != 0o700 {
			t.Errorf("secret %s: its directory is not private (0700)", name)
		}
	}
}

// traefikDynamic is the part of deploy/traefik/dynamic.yml the test reads.
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			Rule        string   `yaml:"rule"`
			Middlewares []string `yaml:"middlewares"`
			Service     string   `yaml:"service"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address                  string   `yaml:"address"`
				TrustForwardHeader       bool     `yaml:"trustForwardHeader"`
				AuthRequestHeaders       []string `yaml:"authRequestHeaders"`
				AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
			} `yaml:"forwardAuth"`
		} `yaml:"middlewares"`
	} `yaml:"http"`
}

// TestTraefikExample checks deploy/traefik/dynamic.yml against the gateway
// (there is no Traefik binary here): it replays what Traefik's ForwardAuth
// would send with that config — only authRequestHeaders of the client's
// request, plus its own X-Forwarded-* — and applies its
// authResponseHeadersRegex the way Traefik does (strip every matching client
// header, copy every matching header of the answer).
func TestTraefikExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "traefik", "dynamic.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var dyn traefikDynamic
	if err := yaml.Unmarshal(b, &dyn); err != nil {
		t.Fatalf("parsing dynamic.yml: %v", err)
	}
	fa := dyn.HTTP.Middlewares["authgateway"].ForwardAuth
	if fa == nil {
		t.Fatalf("no forwardAuth middleware named authgateway")
	}
	if u, err := url.Parse(fa.Address); err != nil || u.Path != "/auth/verify" {
		t.Errorf("forwardAuth.address %q, want the gateway's /auth/verify", fa.Address)
	}
	if fa.TrustForwardHeader {
		t.Errorf("trustForwardHeader: true lets clients choose X-Forwarded-Uri/-Method")
	}
	for _, h := range fa.AuthRequestHeaders {
		if n := strings.ToLower(h); strings.HasPrefix(n, "x-original-") || strings.HasPrefix(n, "x-forwarded-") {
			t.Errorf("authRequestHeaders passes the client's %s to the gateway", h)
		}
	}
	if len(fa.AuthRequestHeaders) == 0 {
		t.Errorf("no authRequestHeaders: Traefik would pass every client header (X-Original-URI too) to the gateway")
	}
	re, err := regexp.Compile(fa.AuthResponseHeadersRegex)
	if err != nil {
		t.Fatalf("authResponseHeadersRegex: %v", err)
	}
	for _, h := range []string{"X-Auth-Subject", "X-Auth-Email", "X-Auth-Roles", "X-Auth-Scopes", "X-Auth-Client-Id",
		"X-Auth-Strategy", "X_auth_subject", "X-AUTH-ROLES", "x-auth-client-id"} {
		if !re.MatchString(h) {
			t.Errorf("authResponseHeadersRegex does not match %s: a client's %s would reach the app", h, h)
		}
	}
	for _, h := range []string{"Authorization", "X-Authorization", "X-Request-Id"} {
		if re.MatchString(h) {
			t.Errorf("authResponseHeadersRegex matches %s", h)
		}
	}
	var protected bool
	for _, r := range dyn.HTTP.Routers {
		if r.Service == "app" && slices.Contains(r.Middlewares, "authgateway") {
			protected = true
		}
		if r.Service == "app" && !slices.Contains(r.Middlewares, "authgateway") {
			t.Errorf("a router reaches the app without the authgateway middleware: %q", r.Rule)
		}
	}
	if !protected {
		t.Errorf("no router sends the app through the authgateway middleware")
	}

	// Replay Traefik with this config against a real gateway.
	g, _ := startForwardAuthGateway(t)
	reader := g.Token(t, "-sub", "alice", "-roles", "reader")
	traefik := func(method, uri string, client http.Header) []string {
		var out []string
		for _, name := range fa.AuthRequestHeaders {
			for _, v := range client.Values(name) {
				out = append(out, http.CanonicalHeaderKey(name)+": "+v)
			}
		}
		return append(out, "X-Forwarded-Method: "+method, "X-Forwarded-Uri: "+uri, "X-Forwarded-For: 192.0.2.7")
	}
	attack := http.Header{}
	attack.Set("Authorization", "Bearer "+reader)
	attack.Set("X-Original-URI", "/public/x")
	attack.Set("X-Original-Method", "GET")
	attack.Set("X-Auth-Roles", "admin")
	if r := verifyFrom(t, g, "127.0.0.1", traefik("GET", "/api/admin/users", attack)...); r.Status != http.StatusForbidden {
		t.Errorf("reader on the admin route with a client-sent X-Original-URI: %d, want 403", r.Status)
	}
	ok := verifyFrom(t, g, "127.0.0.1", traefik("GET", "/api/orders", attack)...)
	if ok.Status != http.StatusOK {
		t.Fatalf("allowed request: %d, want 200", ok.Status)
	}
	// What the app would get: the client's headers minus every match, plus
	// the answer's matches — exactly the gateway's identity.
	app := http.Header{"X-Auth-Roles": {"admin"}, "X_auth_subject": {"mallory"}}
	for k := range app {
		if re.MatchString(k) {
			delete(app, k)
		}
	}
	for k, v := range ok.Header {
		if re.MatchString(k) {
			app[k] = v
		}
	}
	got, want := authHeaders(app), map[string]string{"X-Auth-Subject": "alice", "X-Auth-Roles": "reader", "X-Auth-Strategy": "userJwt"}
	if !maps.Equal(got, want) {
		t.Errorf("app would see %q, want only the gateway's identity %q", got, want)
	}
}
