package engine

import (
	"strconv"
	"strings"
	"sync"
)

// maxCachedReasons bounds the default-deny reason cache; beyond it reasons
// are formatted on every call.
const maxCachedReasons = 1 << 16

// maxReasonPart bounds how much of a client-supplied string a reason quotes.
const maxReasonPart = 128

type keyKind uint8

const (
	keyDefaultDeny keyKind = iota
	keyUnknownResource
)

// reasonKey identifies a formatted reason.
type reasonKey struct {
	kind     keyKind
	identity string
	resource string
	action   string
	object   string
}

// reasonCache memoises formatted reasons so that deciding does not allocate
// for requests seen before. It does not change what Decide returns.
type reasonCache struct {
	mu sync.RWMutex
	m  map[reasonKey]string
}

func (c *reasonCache) init() { c.m = make(map[reasonKey]string) }

func (c *reasonCache) get(k reasonKey) string {
	c.mu.RLock()
	s, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = k.format()
	c.mu.Lock()
	if len(c.m) < maxCachedReasons {
		k.identity = strings.Clone(k.identity)
		k.resource = strings.Clone(k.resource)
		k.action = strings.Clone(k.action)
		k.object = strings.Clone(k.object)
		c.m[k] = s
	}
	c.mu.Unlock()
	return s
}

func (k *reasonKey) format() string {
	switch k.kind {
	case keyUnknownResource:
		return "unknown resource " + quote(k.resource) + " (default deny)"
	}
	action := clip(k.action)
	if k.object != "" {
		action += " " + clip(k.object)
	}
	return "no rule grants " + clip(k.identity) + " " + action + " on " + clip(k.resource) + " (default deny)"
}

func clip(s string) string {
	if len(s) > maxReasonPart {
		s = s[:maxReasonPart] + "..."
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' }) {
		return quote(s)
	}
	return s
}

func quote(s string) string {
	if len(s) > maxReasonPart {
		s = s[:maxReasonPart] + "..."
	}
	return strconv.Quote(s)
}

// defaultDenyKey describes the request for a default-deny reason: the
// statement kind, "shell" or "ssh command", the HTTP method, or the
// Kubernetes verb and resource; command lines are left out.
func defaultDenyKey(req *Request, resource string) reasonKey {
	k := reasonKey{kind: keyDefaultDeny, identity: req.Identity, resource: resource}
	switch {
	case req.SQL != nil:
		k.action = req.SQL.Kind
		if k.action == "" {
			k.action = "sql statement"
		}
	case req.SSH != nil:
		k.action = "ssh command"
		if req.SSH.Command == "" {
			k.action = "shell"
		}
	case req.HTTP != nil:
		k.action = req.HTTP.Method
		k.object = "request"
	case req.Kubernetes != nil:
		k.action = req.Kubernetes.Verb
		k.object = req.Kubernetes.Resource
	default:
		k.action = "access"
	}
	if k.action == "" {
		k.action = "unknown action"
	}
	return k
}
