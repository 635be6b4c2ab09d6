package server

import (
	"context"
	"net/http"

	"github.com/authgateway/authgateway/internal/strategies"
)

// sessions is what browser login contributes to the gateway.
type sessions struct {
	// Endpoints are /auth/login, /auth/callback, /auth/logout, /auth/refresh,
	// /auth/session by canonical path.
	Endpoints map[string]http.Handler
	// Revocations is the access-token denylist the jwt strategy consults.
	Revocations strategies.Revocations
}

// buildSessions builds the login flow and session stores when some oauth2
// strategy has login: true; nil otherwise.
func (a *App) buildSessions(ctx context.Context) (*sessions, error) {
	return nil, nil
}
