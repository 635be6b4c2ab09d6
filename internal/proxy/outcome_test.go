package proxy

import "testing"

// TestOutcomeClass pins the outcome names the logs and metrics carry and the
// one classification metrics and the audit log count by.
func TestOutcomeClass(t *testing.T) {
	tests := []struct {
		o     Outcome
		name  string
		class Class
	}{
		{OutcomeNone, "", ClassOther},
		{OutcomeAllowed, "allowed", ClassSuccess},
		{OutcomePublic, "public", ClassOther},
		{OutcomeUnauthenticated, "unauthenticated", ClassAuthFailure},
		{OutcomeInvalid, "invalid", ClassAuthFailure},
		{OutcomeForbidden, "forbidden", ClassAuthFailure},
		{OutcomeRateLimited, "rate_limited", ClassRateLimited},
		{OutcomeAuthUnavailable, "auth_unavailable", ClassAuthFailure},
		{OutcomeBadRequest, "bad_request", ClassRefused},
		{OutcomeNotFound, "not_found", ClassOther},
		{OutcomeMethodNotAllowed, "method_not_allowed", ClassOther},
		{OutcomeCORSPreflight, "cors_preflight", ClassOther},
		{OutcomeCORSRefused, "cors_refused", ClassRefused},
		{OutcomeEndpoint, "endpoint", ClassOther},
	}
	if len(tests) != len(outcomeNames) {
		t.Fatalf("%d outcomes tested, %d named", len(tests), len(outcomeNames))
	}
	for _, tc := range tests {
		if got := tc.o.String(); got != tc.name {
			t.Errorf("Outcome(%d).String() = %q, want %q", tc.o, got, tc.name)
		}
		if got := tc.o.Class(); got != tc.class {
			t.Errorf("%q.Class() = %d, want %d", tc.name, got, tc.class)
		}
		if got := tc.o.IsAuthFailure(); got != (tc.class == ClassAuthFailure) {
			t.Errorf("%q.IsAuthFailure() = %v", tc.name, got)
		}
	}
	if got := Outcome(200).String(); got != "unknown" {
		t.Errorf("an unnamed outcome prints %q, want unknown", got)
	}
}
