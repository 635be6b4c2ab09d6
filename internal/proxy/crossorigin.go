package proxy

import "net/http"

// crossOriginRefused reports whether a request authenticated by a cookie
// must be refused as a cross-site request forgery: an unsafe method sent
// from another origin, as net/http's CrossOriginProtection judges it
// (Sec-Fetch-Site, else Origin against Host; requests with neither are not
// from a browser and pass). SameSite=Strict does not cover this:
// evil.example.com is the same site as app.example.com. An origin the
// route's CORS policy names exactly is trusted; "*" is not, since it grants
// reading responses, not sending the user's session.
func (g *Gateway) crossOriginRefused(r *http.Request, rt *Route) bool {
	if g.crossOrigin.Check(r) == nil {
		return false
	}
	return rt.CORS == nil || !rt.CORS.origins[r.Header.Get("Origin")]
}
