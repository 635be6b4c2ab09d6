package login

// LoginState and the codec are exported to the external tests, which rewrite
// a real login's state cookie to attack single checks (nonce, PKCE verifier).
type LoginState = loginState

func StateCodec(secret []byte, cookieName string) (open func(string) (LoginState, error), seal func(LoginState) (string, error)) {
	c, err := newStateCodec(secret, cookieName)
	if err != nil {
		panic(err)
	}
	return c.open, c.seal
}
