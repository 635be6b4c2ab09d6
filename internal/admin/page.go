package admin

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/authgateway/authgateway/internal/apikey"
	"github.com/authgateway/authgateway/internal/config"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
}).ParseFS(assets, "templates/*.html"))

// View is what the dashboard shows of the gateway's state.
type View struct {
	ConfigPath string
	Hash       string
	// ReloadAt is the last load or reload attempt; ReloadErr its error
	// (with file:line), "" when it succeeded.
	ReloadAt      time.Time
	ReloadErr     string
	Routes        []RouteView
	KeyStrategies []string
}

// RouteView is one route as the gateway understood it.
type RouteView struct {
	Name       string
	Host       string
	Path       string
	Methods    []string
	Strategies []string
	Roles      []string
	Scopes     []string
	Public     bool
	Policy     string
	Upstream   string
	// Health is the route's upstream pool, when it has one.
	Health UpstreamHealth
}

type routeRow struct {
	RouteView
	Targets []TargetStatus
}

// flash is the result of a change, shown once above the page.
type flash struct {
	Message string
	Error   string
	// NewKey is a created or rotated key: shown in this answer only.
	NewKey string
}

type keyTable struct {
	Strategy string
	Keys     []keyRow
	Error    string
}

type keyRow struct {
	*apikey.Record
	Status string
}

type chart struct {
	Series
	Bars          []bar
	Sum, SumDeny  int64
	Width, Height int
}

type bar struct{ X, W, YT, HT, YD, HD int }

type pageData struct {
	View
	Now      time.Time
	CSRF     string
	HasToken bool
	Rows     []routeRow
	Charts   []chart
	Denials  []Denial
	Keys     []keyTable
	Sessions bool
	Flash    flash
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, flash{})
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, f flash) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	now := time.Now()
	d := pageData{Now: now, CSRF: h.csrf, HasToken: h.opts.Token != "", Sessions: h.opts.Sessions != nil, Flash: f}
	if h.opts.View != nil {
		d.View = h.opts.View(ctx)
	}
	for _, rt := range d.Routes {
		row := routeRow{RouteView: rt}
		if rt.Health != nil {
			row.Targets = rt.Health.Targets()
		}
		d.Rows = append(d.Rows, row)
	}
	if h.opts.Stats != nil {
		for _, s := range h.opts.Stats.Traffic(now) {
			d.Charts = append(d.Charts, newChart(s))
		}
		d.Denials = h.opts.Stats.Recent()
	}
	if h.opts.Keys != nil {
		for _, name := range d.KeyStrategies {
			d.Keys = append(d.Keys, h.keyTable(ctx, name, now))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "dashboard.html", d); err != nil {
		h.opts.Logger.Error("rendering the dashboard", "error", err)
	}
}

func (h *Handler) keyTable(ctx context.Context, name string, now time.Time) keyTable {
	t := keyTable{Strategy: name}
	m, err := h.opts.Keys(ctx, name)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	recs, err := m.List(ctx)
	if err != nil {
		t.Error = "listing keys: " + err.Error()
		return t
	}
	for _, rec := range recs {
		st := "active"
		switch {
		case rec.Revoked():
			st = "revoked"
		case rec.Expired(now):
			st = "expired"
		case !rec.ExpiresAt.IsZero():
			st = "expires " + rec.ExpiresAt.UTC().Format("2006-01-02 15:04Z")
		}
		t.Keys = append(t.Keys, keyRow{Record: rec, Status: st})
	}
	return t
}

const chartW, chartH = 300, 48

func newChart(s Series) chart {
	c := chart{Series: s, Width: chartW, Height: chartH}
	var peak int64 = 1
	for i := range s.Total {
		peak = max(peak, s.Total[i])
		c.Sum += s.Total[i]
		c.SumDeny += s.Denied[i]
	}
	w := chartW / len(s.Total)
	for i := range s.Total {
		ht := int(s.Total[i] * (chartH - 2) / peak)
		hd := int(s.Denied[i] * (chartH - 2) / peak)
		if s.Total[i] > 0 && ht == 0 {
			ht = 1
		}
		if s.Denied[i] > 0 && hd == 0 {
			hd = 1
		}
		c.Bars = append(c.Bars, bar{X: i * w, W: w - 2, YT: chartH - ht, HT: ht, YD: chartH - hd, HD: hd})
	}
	return c
}

func (h *Handler) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "login.html", struct{ Error string }{msg})
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := assets.ReadFile("static/" + path.Base(name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	_, _ = w.Write(b)
}

// answer ends a change: JSON for an API client (Accept:
// application/json), else the dashboard with the result on top.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, f flash, v any) {
	status := http.StatusOK
	if f.Error != "" {
		status = http.StatusBadRequest
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if f.Error != "" {
			v = map[string]string{"error": f.Error}
		}
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	h.render(w, r, status, f)
}

func (h *Handler) manager(r *http.Request) (KeyManager, string, error) {
	name := r.PostFormValue("strategy")
	if h.opts.Keys == nil {
		return nil, name, errors.New("no api_key strategy")
	}
	m, err := h.opts.Keys(r.Context(), name)
	return m, name, err
}

func (h *Handler) keyCreate(w http.ResponseWriter, r *http.Request) {
	m, strategy, err := h.manager(r)
	if err != nil {
		h.answer(w, r, flash{Error: err.Error()}, nil)
		return
	}
	p := apikey.CreateParams{Name: strings.TrimSpace(r.PostFormValue("name")), Prefix: r.PostFormValue("prefix"),
		Roles: splitList(r.PostFormValue("roles")), Scopes: splitList(r.PostFormValue("scopes"))}
	if e := strings.TrimSpace(r.PostFormValue("expires")); e != "" {
		if p.ExpiresIn, err = config.ParseDuration(e); err != nil || p.ExpiresIn <= 0 {
			h.answer(w, r, flash{Error: fmt.Sprintf("expires %q: want a positive duration like 90d", e)}, nil)
			return
		}
	}
	key, rec, err := m.Create(r.Context(), p)
	if err != nil {
		h.answer(w, r, flash{Error: "creating key: " + err.Error()}, nil)
		return
	}
	h.keyEvent("key_created", strategy, rec.ID, rec.Name)
	h.answer(w, r, flash{Message: "Created key " + rec.ID + " (" + rec.Name + "). Store it now: it is shown only once.", NewKey: key},
		map[string]string{"id": rec.ID, "key": key})
}

func (h *Handler) keyRevoke(w http.ResponseWriter, r *http.Request) {
	m, strategy, err := h.manager(r)
	if err != nil {
		h.answer(w, r, flash{Error: err.Error()}, nil)
		return
	}
	id := r.PostFormValue("id")
	if err := m.Revoke(r.Context(), id); err != nil {
		h.answer(w, r, flash{Error: "revoking key: " + keyErr(err)}, nil)
		return
	}
	h.keyEvent("key_revoked", strategy, id, "")
	h.answer(w, r, flash{Message: "Revoked key " + id + "."}, map[string]string{"revoked": id})
}

func (h *Handler) keyRotate(w http.ResponseWriter, r *http.Request) {
	m, strategy, err := h.manager(r)
	if err != nil {
		h.answer(w, r, flash{Error: err.Error()}, nil)
		return
	}
	id, grace := r.PostFormValue("id"), 24*time.Hour
	if g := strings.TrimSpace(r.PostFormValue("grace")); g != "" {
		if grace, err = config.ParseDuration(g); err != nil {
			h.answer(w, r, flash{Error: fmt.Sprintf("grace %q: want a duration like 24h", g)}, nil)
			return
		}
	}
	key, rec, err := m.Rotate(r.Context(), id, grace)
	if err != nil {
		h.answer(w, r, flash{Error: "rotating key: " + keyErr(err)}, nil)
		return
	}
	h.keyEvent("key_rotated", strategy, rec.ID, rec.Name)
	h.answer(w, r, flash{Message: "Rotated key " + id + " → " + rec.ID + ": the old key works for " + grace.String() + ". Store the new one now: it is shown only once.", NewKey: key},
		map[string]string{"id": rec.ID, "key": key, "replaces": id})
}

func (h *Handler) sessionsRevoke(w http.ResponseWriter, r *http.Request) {
	if h.opts.Sessions == nil {
		h.answer(w, r, flash{Error: "session revocation is not available"}, nil)
		return
	}
	sub := strings.TrimSpace(r.PostFormValue("subject"))
	if sub == "" {
		h.answer(w, r, flash{Error: "subject is required"}, nil)
		return
	}
	n, err := h.opts.Sessions.RevokeSubject(r.Context(), sub)
	if err != nil {
		h.answer(w, r, flash{Error: "revoking sessions: " + err.Error()}, nil)
		return
	}
	h.answer(w, r, flash{Message: fmt.Sprintf("Revoked %d sessions of %s.", n, sub)}, map[string]int{"revoked": n})
}

func (h *Handler) keyEvent(event, strategy, id, subject string) {
	if h.opts.OnKeyEvent != nil {
		h.opts.OnKeyEvent(event, strategy, id, subject)
	}
}

func keyErr(err error) string {
	if errors.Is(err, apikey.ErrNotFound) {
		return "no such key"
	}
	return err.Error()
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
