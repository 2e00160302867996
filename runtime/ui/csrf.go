package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
)

const (
	// sessionCookie holds "HEXID.TOKEN" of a login.
	sessionCookie = "gatehouse_session"
	// loginCookie holds the nonce the log-in form is bound to.
	loginCookie = "gatehouse_login"
	csrfField   = "csrf"
	idBytes     = 32
	// MinKeyLen is the shortest Config.Key accepted.
	MinKeyLen = 16
)

// Purposes keep the tokens of the three kinds of session apart, so a
// value valid for one can never pass as another.
const (
	purposeCookie = "cookie" // a dashboard login: random id
	purposeBearer = "bearer" // an Authorization header: SHA-256 of the token
	purposeLogin  = "login"  // the log-in form: random nonce
)

var (
	errCSRFMissing      = errors.New("the form carries no CSRF token")
	errCSRFInvalid      = errors.New("the form's CSRF token is not the one of this login")
	errNoLogin          = errors.New("not logged in")
	errBadAuthorization = errors.New(`the Authorization header is not "Bearer TOKEN"`)
)

// session is the login a request carries.
type session struct {
	purpose string
	id      []byte
	token   string
}

// csrf is the token forms of this session carry.
func (h *Handler) csrf(s session) string {
	return base64.RawURLEncoding.EncodeToString(h.mac(s.purpose, s.id))
}

func (h *Handler) mac(purpose string, id []byte) []byte {
	m := hmac.New(sha256.New, h.cfg.Key)
	m.Write([]byte("gatehouse dashboard csrf v1\x00"))
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(id)
	return m.Sum(nil)
}

// checkCSRF verifies the CSRF field of a parsed form against the session.
func (h *Handler) checkCSRF(r *http.Request, s session) error {
	got := r.PostForm.Get(csrfField)
	if got == "" {
		return errCSRFMissing
	}
	raw, err := base64.RawURLEncoding.DecodeString(got)
	if err != nil || !hmac.Equal(raw, h.mac(s.purpose, s.id)) {
		return errCSRFInvalid
	}
	return nil
}

// sessionOf returns the login of a request: its Authorization header, or
// else its session cookie (errNoLogin when there is none or it is
// malformed).
func sessionOf(r *http.Request) (session, error) {
	if hd := r.Header.Get("Authorization"); hd != "" {
		tok, ok := strings.CutPrefix(hd, "Bearer ")
		if !ok || tok == "" {
			return session{}, errBadAuthorization
		}
		sum := sha256.Sum256([]byte(tok))
		return session{purpose: purposeBearer, id: sum[:], token: tok}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, errNoLogin
	}
	hexID, tok, found := strings.Cut(c.Value, ".")
	id, err := hex.DecodeString(hexID)
	if !found || err != nil || len(id) != idBytes || tok == "" {
		return session{}, errNoLogin
	}
	return session{purpose: purposeCookie, id: id, token: tok}, nil
}

// newSession starts a login for a verified token.
func newSession(tok string) session {
	return session{purpose: purposeCookie, id: randomID(), token: tok}
}

func (s session) cookieValue() string { return hex.EncodeToString(s.id) + "." + s.token }

// loginNonce returns the session of the log-in form: the browser's nonce,
// or a new one (set as a cookie) when it has none.
func (h *Handler) loginNonce(w http.ResponseWriter, r *http.Request) session {
	if c, err := r.Cookie(loginCookie); err == nil {
		if id, err := hex.DecodeString(c.Value); err == nil && len(id) == idBytes {
			return session{purpose: purposeLogin, id: id}
		}
	}
	s := session{purpose: purposeLogin, id: randomID()}
	h.setCookie(w, loginCookie, hex.EncodeToString(s.id), 0)
	return s
}

func randomID() []byte {
	b := make([]byte, idBytes)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return b
}

// setCookie sets (maxAge 0) or deletes (maxAge < 0) a dashboard cookie.
func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/ui/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.SecureCookies})
}

// originProtection refuses state-changing requests from other origins
// (other sites, hosts or ports) before anything else looks at them.
func (h *Handler) originProtection(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.cfg.Logger.WarnContext(r.Context(), "Dashboard refused a cross-origin request.", "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		h.errorPage(w, &page{}, http.StatusForbidden, "This form was sent from another origin (another site, host or port) "+
			"than the dashboard's, so it was refused. Open the dashboard at its own address and submit the form there.")
	}))
	return cop.Handler(next)
}
