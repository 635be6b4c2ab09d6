package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/authgateway/authgateway/internal/admin"
	"github.com/authgateway/authgateway/internal/redisconn"
)

// AdminHandler serves the dashboard and admin API (package admin) and,
// open to probes and scrapers, /healthz, /readyz and /metrics.
func (a *App) AdminHandler() http.Handler {
	opts := admin.Options{
		Token:      a.started.Server.AdminToken,
		Probes:     a.probes(),
		View:       a.adminView,
		Stats:      a.stats,
		Keys:       a.keyManager,
		Logger:     a.Logger.With("component", "admin"),
		OnKeyEvent: a.auditKeyEvent,
	}
	// The session store offers "revoke every session of a subject" once it
	// can (issue 17); the dashboard shows the form only then.
	if a.sessions != nil {
		if r, ok := any(a.sessions).(admin.SessionRevoker); ok {
			opts.Sessions = r
		}
	}
	return admin.New(opts)
}

// probes serves /healthz, /readyz and /metrics.
func (a *App) probes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		// config_hash is the file loaded last (its routes, strategies and
		// keys serve); restart_keys are the keys of that file whose new
		// values wait for a restart (the process keeps the values it
		// started with).
		body := struct {
			Status          string   `json:"status"`
			ConfigHash      string   `json:"config_hash"`
			RestartRequired bool     `json:"restart_required"`
			RestartKeys     []string `json:"restart_keys,omitempty"`
			LastReloadError string   `json:"last_reload_error,omitempty"`
			Detail          string   `json:"detail,omitempty"`
		}{Status: "ready", ConfigHash: a.Config().Hash, RestartKeys: a.RestartKeys()}
		body.RestartRequired = len(body.RestartKeys) > 0
		if p := a.reloadErr.Load(); p != nil {
			body.LastReloadError = *p
		}
		code := http.StatusOK
		if err := a.Ready(r.Context()); errors.Is(err, redisconn.ErrDegraded) {
			// Serving: what lives on the masters that answer works, the
			// rest fails closed. Every replica shares the cluster, so
			// taking this one out of rotation would help nothing.
			body.Status, body.Detail = "degraded", err.Error()
		} else if err != nil {
			body.Status, body.Detail, code = "not_ready", "redis unreachable", http.StatusServiceUnavailable
		}
		// Upstream targets down degrade, never take the gateway out of
		// rotation: every replica shares the upstreams, and the other
		// routes (and the healthy targets) still serve.
		if down := a.upstreamsDown(); down != "" {
			if body.Status == "ready" {
				body.Status = "degraded"
			}
			body.Detail = strings.TrimPrefix(body.Detail+"; "+down, "; ")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.Handle("GET /metrics", a.Metrics.Handler())
	return mux
}

// Run starts the gateway (Start) and serves until ctx is done, then drains
// in-flight requests for up to server.shutdown_timeout. It reloads the
// config on SIGHUP and when the config file (or a secret file it names)
// changes. The listeners' settings are those the process started with.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	s := a.started.Server
	main := &http.Server{
		Addr:              s.Listen,
		Handler:           secureTransport(a, s, a.ips),
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelDebug),
	}
	servers := []*http.Server{main}
	if s.TLS != nil {
		main.TLSConfig = a.tlsConfig(s.TLS)
		if s.TLS.RedirectHTTP != "" {
			servers = append(servers, &http.Server{
				Addr: s.TLS.RedirectHTTP, Handler: httpsRedirect(s.Listen),
				ReadHeaderTimeout: s.ReadHeaderTimeout.D(), IdleTimeout: s.IdleTimeout.D(), MaxHeaderBytes: s.MaxHeaderBytes,
			})
		}
	}
	if s.AdminListen != "" {
		servers = append(servers, &http.Server{
			Addr: s.AdminListen, Handler: a.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second,
		})
	}
	listeners := make([]net.Listener, 0, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return errors.New("listening on " + srv.Addr + ": " + err.Error())
		}
		listeners = append(listeners, ln)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		a.Logger.Info("listening", "addr", listeners[i].Addr().String(), "admin", srv != main)
		ln := listeners[i]
		if srv.TLSConfig != nil {
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if a.Redis != nil {
		go a.warnIfRedisDown(watchCtx)
	}
	go a.watchSIGHUP(watchCtx)
	if err := a.watchFiles(watchCtx); err != nil {
		a.Logger.Warn("config file watching disabled; reload with SIGHUP", "error", err)
	}

	var runErr error
	select {
	case <-ctx.Done():
		a.Logger.Info("shutting down", "drain_timeout", s.ShutdownTimeout.D().String())
	case runErr = <-errc:
		a.Logger.Error("server failed", "error", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout.D())
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			a.Logger.Warn("shutdown incomplete", "error", err)
		}
	}
	return runErr
}

// warnIfRedisDown says at start, once, that the configured Redis does not
// answer. The gateway serves anyway: whatever needs Redis fails closed per
// request (503), or passes uncounted where on_redis_error is allow.
func (a *App) warnIfRedisDown(ctx context.Context) {
	if err := a.Ready(ctx); err != nil && ctx.Err() == nil {
		a.Logger.Warn("redis unreachable at start: serving anyway; requests that need it fail closed (503) until it answers, limits with on_redis_error: allow pass uncounted",
			"error", err.Error())
	}
}

func (a *App) watchSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			a.Logger.Info("SIGHUP: reloading config")
			_ = a.Reload(ctx)
		}
	}
}
