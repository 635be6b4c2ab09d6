package strategies

// Reason is the machine-readable id of a denial: the `reason` of auth
// events, audit records and the auth-failure metric. One denial has one id
// whatever strategy finds it; README.md ("Reason ids") lists them.
type Reason string

// The chain's own reasons.
const (
	// ReasonNoCredentials: no strategy of the route found a credential of
	// its kind.
	ReasonNoCredentials Reason = "no_credentials"
	// ReasonInvalidCredentials: an invalid credential that gave no reason.
	ReasonInvalidCredentials Reason = "invalid_credentials"
	// ReasonStrategyError: a technical failure (a store or provider that
	// cannot be reached); the request fails closed.
	ReasonStrategyError Reason = "strategy_error"
	// ReasonBadIdentityValue: a verified credential whose subject, email or
	// client id cannot be forwarded as it was decided on (control
	// characters, space around it, no subject).
	ReasonBadIdentityValue Reason = "bad_identity_value"
)

// Reasons of invalid credentials, any strategy.
const (
	ReasonExpired Reason = "expired"
	// ReasonRevoked: an API key revoked, or an access token whose session
	// ended (logout).
	ReasonRevoked Reason = "revoked"
	// ReasonUnknownKey: the credential names a key the gateway does not
	// know: an API key not in the store, or a token whose kid (or, without
	// a kid, whose algorithm) matches no verification key.
	ReasonUnknownKey Reason = "unknown_key"
	// ReasonMalformedKey: an API key header that is empty, repeated, or not
	// of the configured format.
	ReasonMalformedKey Reason = "malformed_key"
)

// Reasons of invalid tokens (jwt and oauth2 strategies).
const (
	ReasonMalformedToken    Reason = "malformed_token"
	ReasonOversizeToken     Reason = "oversize_token"
	ReasonBadSignature      Reason = "bad_signature"
	ReasonWrongIssuer       Reason = "wrong_issuer"
	ReasonWrongAudience     Reason = "wrong_audience"
	ReasonNotYetValid       Reason = "not_yet_valid"
	ReasonMissingClaim      Reason = "missing_claim" // exp, or iss / aud when they are checked
	ReasonMissingSub        Reason = "missing_sub"
	ReasonMissingIAT        Reason = "missing_iat"
	ReasonLifetimeTooLong   Reason = "lifetime_too_long"
	ReasonInvalidToken      Reason = "invalid_token" // refused by the JWT library for another reason
	ReasonDuplicateMember   Reason = "duplicate_member"
	ReasonUnsupportedCrit   Reason = "unsupported_crit"
	ReasonWrongTokenType    Reason = "wrong_token_type" // a refresh token, a DPoP or other token type
	ReasonIDToken           Reason = "id_token"         // an OpenID Connect ID token (nonce, at_hash)
	ReasonInactive          Reason = "inactive"         // the provider's introspection says not active
	ReasonSenderConstrained Reason = "sender_constrained"
	ReasonUnverifiableToken Reason = "unverifiable_token" // opaque, and no introspection is configured
)

// Reasons of the basic strategy (HTTP Basic against an htpasswd file). An
// unknown user and a wrong password are told apart in logs and metrics
// only: the client gets the same 401, after the same bcrypt work.
const (
	// ReasonMalformedCredentials: an Authorization: Basic header that is
	// repeated, has no credentials, bad base64, or no colon.
	ReasonMalformedCredentials Reason = "malformed_credentials"
	ReasonUnknownUser          Reason = "unknown_user"
	ReasonWrongPassword        Reason = "wrong_password"
)

// Reasons of the mtls strategy (an expired certificate is ReasonExpired).
const (
	// ReasonUntrustedCertificate: a client certificate that does not chain
	// to server.tls.client_ca_file, or is not for client authentication.
	ReasonUntrustedCertificate Reason = "untrusted_certificate"
	// ReasonSubjectNotAllowed: a verified certificate whose subject is
	// not in allowed_subjects, or that has no subject of the kind
	// subject_from names.
	ReasonSubjectNotAllowed Reason = "subject_not_allowed"
)
