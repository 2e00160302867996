package ui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/runtime/record"
)

func TestCheckCSRF(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	h := &Handler{cfg: Config{Key: key}}
	s := session{purpose: purposeCookie, id: randomID()}
	valid := h.csrf(s)
	other := &Handler{cfg: Config{Key: []byte("another gateway's key, 32 bytes")}}
	cases := []struct {
		name  string
		field []string
		want  error
	}{
		{"valid", []string{valid}, nil},
		{"missing", nil, errCSRFMissing},
		{"empty", []string{""}, errCSRFMissing},
		{"another session id", []string{h.csrf(session{purpose: purposeCookie, id: randomID()})}, errCSRFInvalid},
		{"another key", []string{other.csrf(s)}, errCSRFInvalid},
		{"the log-in form's purpose", []string{h.csrf(session{purpose: purposeLogin, id: s.id})}, errCSRFInvalid},
		{"the bearer purpose", []string{h.csrf(session{purpose: purposeBearer, id: s.id})}, errCSRFInvalid},
		{"a plain HMAC of the id", []string{base64.RawURLEncoding.EncodeToString(plainMAC(key, s.id))}, errCSRFInvalid},
		{"the id itself", []string{base64.RawURLEncoding.EncodeToString(s.id)}, errCSRFInvalid},
		{"truncated", []string{valid[:20]}, errCSRFInvalid},
		{"not base64", []string{"!" + valid[1:]}, errCSRFInvalid},
		{"padded", []string{valid + "="}, errCSRFInvalid},
		{"hex of the token", []string{hex.EncodeToString(h.mac(s.purpose, s.id))}, errCSRFInvalid},
		{"a wrong value first", []string{"AAAA", valid}, errCSRFInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{PostForm: url.Values{}}
			for _, v := range tc.field {
				r.PostForm.Add(csrfField, v)
			}
			if err := h.checkCSRF(r, s); !errors.Is(err, tc.want) {
				t.Errorf("checkCSRF = %v, want %v", err, tc.want)
			}
		})
	}
}

func plainMAC(key, id []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(id)
	return m.Sum(nil)
}

func TestSessionOf(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("0a", idBytes)
	cases := []struct {
		name    string
		auth    string
		cookie  string
		want    error
		purpose string
		token   string
	}{
		{"cookie", "", id + ".tok.en", nil, purposeCookie, "tok.en"},
		{"bearer", "Bearer tok", "", nil, purposeBearer, "tok"},
		{"bearer wins over the cookie", "Bearer tok", id + ".other", nil, purposeBearer, "tok"},
		{"nothing", "", "", errNoLogin, "", ""},
		{"basic", "Basic dTpw", "", errBadAuthorization, "", ""},
		{"empty bearer", "Bearer ", "", errBadAuthorization, "", ""},
		{"no dot", "", id, errNoLogin, "", ""},
		{"no token", "", id + ".", errNoLogin, "", ""},
		{"short id", "", id[2:] + ".tok", errNoLogin, "", ""},
		{"id not hex", "", strings.Repeat("zz", idBytes) + ".tok", errNoLogin, "", ""},
		{"old token cookie", "", "", errNoLogin, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := http.NewRequest("GET", "http://gw/ui/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tc.cookie})
			}
			if tc.name == "old token cookie" {
				r.AddCookie(&http.Cookie{Name: "gatehouse_token", Value: "tok"})
			}
			s, err := sessionOf(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("sessionOf = %v, want %v", err, tc.want)
			}
			if err == nil && (s.purpose != tc.purpose || s.token != tc.token || len(s.id) != idBytes) {
				t.Errorf("session = %+v, want purpose %s token %s", s, tc.purpose, tc.token)
			}
		})
	}
}

// request is a hand-made browser request: its cookies and headers are
// exactly the ones given.
type request struct {
	bearer  string
	cookies map[string]string
	headers map[string]string
	form    url.Values
}

func (f *fixture) send(t *testing.T, path string, rq request) (int, string) {
	t.Helper()
	code, body, _ := f.sendH(t, path, rq)
	return code, body
}

func (f *fixture) sendH(t *testing.T, path string, rq request) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", f.http.URL+path, strings.NewReader(rq.form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	for k, v := range rq.headers {
		req.Header.Set(k, v)
	}
	for k, v := range rq.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// TestFormRefusals sends every forged variant of alice's approval vote the
// dashboard must refuse, each alone; none may record a vote. Then the
// accepted variants pass.
func TestFormRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	alice := f.browser(t)
	alice.login(f.token(t, "alice"))
	_, page, _ := alice.get("/ui/approvals")
	csrf := csrfOf(t, page)
	cookie := alice.cookie(sessionCookie)
	hexID, aliceTok, _ := strings.Cut(cookie, ".")
	sid, _ := hex.DecodeString(hexID)
	jar := map[string]string{sessionCookie: cookie}

	again := f.browser(t) // alice's second login
	again.login(aliceTok)
	_, page, _ = again.get("/ui/approvals")
	csrfAgain := csrfOf(t, page)
	carol := f.browser(t)
	carol.login(f.token(t, "carol"))
	_, page, _ = carol.get("/ui/approvals")
	csrfCarol := csrfOf(t, page)
	otherGateway := &Handler{cfg: Config{Key: randomKey(t)}}
	bearerSum := sha256.Sum256([]byte(aliceTok))
	bearerCSRF := f.h.csrf(session{purpose: purposeBearer, id: bearerSum[:]})
	otherTok := f.token(t, "alice") // another token of the same identity
	otherSum := sha256.Sum256([]byte(otherTok))
	planted := strings.Repeat("A", 43)

	form := func(csrf string) url.Values {
		v := url.Values{"decision": {"approve"}, "reason": {"forged"}}
		if csrf != "" {
			v.Set(csrfField, csrf)
		}
		return v
	}
	withSession := func(extra map[string]string) map[string]string {
		m := map[string]string{sessionCookie: cookie}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	const (
		csrfRefusal   = "CSRF check failed"
		originRefusal = "another origin"
	)
	host := strings.TrimPrefix(f.http.URL, "http://")
	hostname, port, _ := strings.Cut(host, ":")
	otherPort := "http://" + hostname + ":1"
	if port == "1" {
		otherPort = "http://" + hostname + ":2"
	}
	cases := []struct {
		name string
		rq   request
		want string
	}{
		{"no csrf field", request{cookies: jar, form: form("")}, csrfRefusal},
		{"planted csrf cookie equal to the field (double submit)",
			request{cookies: withSession(map[string]string{"gatehouse_csrf": planted}), form: form(planted)}, csrfRefusal},
		{"planted login nonce and its csrf",
			request{cookies: withSession(map[string]string{loginCookie: strings.Repeat("11", idBytes)}),
				form: form(f.h.csrf(session{purpose: purposeLogin, id: []byte(strings.Repeat("\x11", idBytes))}))}, csrfRefusal},
		{"csrf of another login of the same identity", request{cookies: jar, form: form(csrfAgain)}, csrfRefusal},
		{"csrf of another identity's login", request{cookies: jar, form: form(csrfCarol)}, csrfRefusal},
		{"csrf under another gateway's key", request{cookies: jar, form: form(otherGateway.csrf(session{purpose: purposeCookie, id: sid}))}, csrfRefusal},
		{"login-form csrf of the session id", request{cookies: jar, form: form(f.h.csrf(session{purpose: purposeLogin, id: sid}))}, csrfRefusal},
		{"bearer csrf on a cookie session", request{cookies: jar, form: form(bearerCSRF)}, csrfRefusal},
		{"malformed csrf", request{cookies: jar, form: form("not base64!")}, csrfRefusal},
		{"bearer without csrf", request{bearer: aliceTok, form: form("")}, csrfRefusal},
		{"bearer with the cookie session's csrf", request{bearer: aliceTok, form: form(csrf)}, csrfRefusal},
		{"bearer with another token's csrf", request{bearer: aliceTok, form: form(f.h.csrf(session{purpose: purposeBearer, id: otherSum[:]}))}, csrfRefusal},
		{"Sec-Fetch-Site cross-site", request{cookies: jar, form: form(csrf),
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}, originRefusal},
		{"Sec-Fetch-Site same-site: another port", request{cookies: jar, form: form(csrf),
			headers: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": otherPort}}, originRefusal},
		{"Origin of another port, no Sec-Fetch-Site", request{cookies: jar, form: form(csrf),
			headers: map[string]string{"Origin": otherPort}}, originRefusal},
		{"Origin of another host, no Sec-Fetch-Site", request{cookies: jar, form: form(csrf),
			headers: map[string]string{"Origin": "http://evil.example"}}, originRefusal},
		{"Origin null", request{cookies: jar, form: form(csrf), headers: map[string]string{"Origin": "null"}}, originRefusal},
		{"bearer from another port", request{bearer: aliceTok, form: form(bearerCSRF),
			headers: map[string]string{"Sec-Fetch-Site": "same-site"}}, originRefusal},
	}
	vote := "/ui/approvals/" + f.approvalID + "/vote"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.send(t, vote, tc.rq)
			if code != http.StatusForbidden || !strings.Contains(body, tc.want) {
				t.Errorf("%d, want 403 with %q\n%s", code, tc.want, body)
			}
		})
	}
	if a, err := f.store.GetApproval(ctx, f.approvalID); err != nil || a.Status != record.StatusPending || len(a.Votes) != 0 {
		t.Fatalf("a refused form changed the approval: %+v, %v", a, err)
	}

	// The same checks let the dashboard's own forms through (log out
	// changes nothing on the server, so it can be repeated).
	accepted := []struct {
		name string
		rq   request
	}{
		{"cookie session, no origin headers", request{cookies: jar, form: url.Values{csrfField: {csrf}}}},
		{"cookie session, same-origin", request{cookies: jar, form: url.Values{csrfField: {csrf}},
			headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.http.URL}}},
		{"cookie session, Origin of this host", request{cookies: jar, form: url.Values{csrfField: {csrf}},
			headers: map[string]string{"Origin": f.http.URL}}},
		{"bearer", request{bearer: aliceTok, form: url.Values{csrfField: {bearerCSRF}}}},
	}
	for _, tc := range accepted {
		if code, body := f.send(t, "/ui/logout", tc.rq); code != http.StatusSeeOther {
			t.Errorf("%s: log out %d, want 303\n%s", tc.name, code, body)
		}
	}
	code, body := f.send(t, vote, request{cookies: jar, form: url.Values{csrfField: {csrf}, "decision": {"approve"}, "reason": {"reviewed"}},
		headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.http.URL}})
	if code != http.StatusSeeOther {
		t.Fatalf("alice's own vote: %d\n%s", code, body)
	}
	if a, err := f.store.GetApproval(ctx, f.approvalID); err != nil || a.Status != record.StatusApproved || a.Votes[0].Approver != "alice" {
		t.Fatalf("approval after alice's vote: %+v, %v", a, err)
	}
}

// TestLoginRefusals: the log-in form is bound to the browser's nonce and
// refused from other origins.
func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := f.browser(t)
	_, page, _ := b.get("/ui/login")
	csrf := csrfOf(t, page)
	nonce := b.cookie(loginCookie)
	tok := f.token(t, "carol")
	nonceID, _ := hex.DecodeString(nonce)
	cases := []struct {
		name string
		rq   request
		want string
	}{
		{"no nonce cookie", request{form: url.Values{csrfField: {csrf}, "token": {tok}}}, "CSRF"},
		{"another nonce", request{cookies: map[string]string{loginCookie: strings.Repeat("22", idBytes)},
			form: url.Values{csrfField: {csrf}, "token": {tok}}}, "CSRF"},
		{"session purpose for the nonce", request{cookies: map[string]string{loginCookie: nonce},
			form: url.Values{csrfField: {f.h.csrf(session{purpose: purposeCookie, id: nonceID})}, "token": {tok}}}, "CSRF"},
		{"from another port", request{cookies: map[string]string{loginCookie: nonce}, form: url.Values{csrfField: {csrf}, "token": {tok}},
			headers: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}}, "another origin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := f.sendH(t, "/ui/login", tc.rq)
			if code != http.StatusForbidden || !strings.Contains(body, tc.want) {
				t.Errorf("%d, want 403 with %q\n%s", code, tc.want, body)
			}
			for _, c := range hdr.Values("Set-Cookie") {
				if strings.HasPrefix(c, sessionCookie+"=") {
					t.Errorf("a refused log-in set %s", c)
				}
			}
		})
	}
	code, body, hdr := f.sendH(t, "/ui/login", request{cookies: map[string]string{loginCookie: nonce},
		form: url.Values{csrfField: {csrf}, "token": {tok}}, headers: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if code != http.StatusSeeOther || !strings.Contains(strings.Join(hdr.Values("Set-Cookie"), "\n"), sessionCookie+"=") {
		t.Errorf("log in: %d %v\n%s", code, hdr, body)
	}
}
