package idp

// Algorithms are the signature algorithms a provider's tokens are verified
// with: public-key ones only, the keys coming from the provider's key set.
// HMAC is never among them: a public key used as an HMAC secret is the
// classic algorithm-confusion attack, and an HMAC keyed with our client
// secret proves nothing about the provider.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Asymmetric reports whether alg is one of Algorithms. It runs for every
// key lookup, so it is the list as a switch (TestAlgorithms keeps the two
// one list).
func Asymmetric(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}
