package engine

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Request classes of the fast index. Classes 0..len(kinds)-1 are SQL
// requests whose statement kind is exactly kinds[i]; the classes below
// follow them.
const (
	clsSQLOther = iota // SQL, a kind no rule names (only "any statement" rules)
	clsSSH
	clsHTTP
	clsK8s
	clsNone // no protocol facts
	nFixedClasses
)

// Bounds of the fast index; a larger policy uses the general path.
const (
	maxFastSlots   = 1 << 21
	maxFastEntries = 1 << 22
)

// fastIndex holds, for every (resource, policy identity, request class),
// the candidate rules already filtered by subject, resource, protocol and
// statement kind, split by effect. Decide uses it when the request names a
// policy identity with its policy groups and carries facts of at most one
// protocol. Lists with identical contents share storage.
type fastIndex struct {
	kinds   []string         // SQL statement kinds named by rules, lower case
	kindIDs map[string]int32 // kind -> class
	nIdent  int
	nClass  int
	// slots[(res*nIdent+ident)*nClass+class] indexes lists.
	slots []uint32
	lists []candList
	arena []int32
	// reasons[(res*nIdent+ident)*len(kinds)+kind] caches the default-deny
	// reason of SQL requests of a known kind (filled on first use).
	reasons  []atomic.Pointer[string]
	nReasons atomic.Int64
}

// candList is one candidate list: deny, approve, allow and mask rules, in
// that order and each in rule order, stored from arena[off].
type candList struct {
	off uint32
	n   [4]uint32
}

// listOrder is the order of the effect groups in a candList.
var listOrder = [4]effect{effDeny, effApprove, effAllow, effMask}

// inClass reports whether rule r can match a request of class cls.
func (f *fastIndex) inClass(r *rule, cls int) bool {
	noProto := r.sql == nil && r.ssh == nil && r.http == nil && r.k8s == nil
	if noProto {
		return true
	}
	nk := len(f.kinds)
	switch {
	case cls < nk:
		return r.sql != nil && (r.sql.anyStatement || containsFold(r.sql.statements, f.kinds[cls]))
	case cls == nk+clsSQLOther:
		return r.sql != nil && r.sql.anyStatement
	case cls == nk+clsSSH:
		return r.ssh != nil
	case cls == nk+clsHTTP:
		return r.http != nil
	case cls == nk+clsK8s:
		return r.k8s != nil
	}
	return false
}

// buildFast builds e.fast from the per-resource index, or leaves it nil
// when the policy is too large for it.
func (e *Engine) buildFast() {
	f := &fastIndex{kindIDs: map[string]int32{}, nIdent: len(e.identities)}
	for i := range e.rules {
		if s := e.rules[i].sql; s != nil {
			for _, k := range s.statements {
				if k == "*" {
					continue
				}
				if _, ok := f.kindIDs[k]; !ok {
					f.kindIDs[k] = int32(len(f.kinds))
					f.kinds = append(f.kinds, k)
				}
			}
		}
	}
	f.nClass = len(f.kinds) + nFixedClasses
	nSlots := len(e.perRes) * f.nIdent * f.nClass
	if f.nIdent == 0 || nSlots > maxFastSlots {
		return
	}
	f.slots = make([]uint32, nSlots)
	dedup := map[string]uint32{}
	var key []byte
	var cand []int32
	var groups [4][]int32
	for ri := range e.perRes {
		r := &e.perRes[ri]
		for id := 0; id < f.nIdent; id++ {
			if r.known == nil {
				return
			}
			cand = append(append(cand[:0], r.known[id]...), r.any...)
			slices.Sort(cand)
			for cls := 0; cls < f.nClass; cls++ {
				for g := range groups {
					groups[g] = groups[g][:0]
				}
				for _, c := range cand {
					cr := &e.rules[c]
					if !f.inClass(cr, cls) {
						continue
					}
					g := slices.Index(listOrder[:], cr.effect)
					groups[g] = append(groups[g], c)
				}
				key = key[:0]
				for g := range groups {
					key = binary.LittleEndian.AppendUint32(key, uint32(len(groups[g])))
					for _, c := range groups[g] {
						key = binary.LittleEndian.AppendUint32(key, uint32(c))
					}
				}
				li, ok := dedup[string(key)]
				if !ok {
					l := candList{off: uint32(len(f.arena))}
					for g := range groups {
						l.n[g] = uint32(len(groups[g]))
						f.arena = append(f.arena, groups[g]...)
					}
					if len(f.arena) > maxFastEntries {
						return
					}
					li = uint32(len(f.lists))
					f.lists = append(f.lists, l)
					dedup[string(key)] = li
				}
				f.slots[(ri*f.nIdent+id)*f.nClass+cls] = li
			}
		}
	}
	f.arena = slices.Clip(f.arena)
	f.reasons = make([]atomic.Pointer[string], len(e.perRes)*f.nIdent*len(f.kinds))
	e.fast = f
}

// class returns the request class of req, or false when the fast index
// cannot serve it (facts of several protocols, or a statement kind that
// equals a rule's kind only when case is ignored).
func (f *fastIndex) class(req *Request) (int, bool) {
	nk := len(f.kinds)
	n, cls := 0, nk+clsNone
	if req.SQL != nil {
		n++
		if id, ok := f.kindIDs[req.SQL.Kind]; ok {
			cls = int(id)
		} else {
			for _, k := range f.kinds {
				if strings.EqualFold(k, req.SQL.Kind) {
					return 0, false
				}
			}
			cls = nk + clsSQLOther
		}
	}
	if req.SSH != nil {
		n++
		cls = nk + clsSSH
	}
	if req.HTTP != nil {
		n++
		cls = nk + clsHTTP
	}
	if req.Kubernetes != nil {
		n++
		cls = nk + clsK8s
	}
	if n > 1 {
		return 0, false
	}
	return cls, true
}

// decideFast decides with the fast index: deny rules first, then approve,
// then allow rules, stopping at the first group with a match; masks are
// evaluated only for a grant. The outcome equals resolve over all
// candidates.
func (e *Engine) decideFast(req *Request, ri *resIndex, rid, id int32, cls int, d *Decision) {
	f := e.fast
	pair := int(rid)*f.nIdent + int(id)
	l := &f.lists[f.slots[pair*f.nClass+cls]]
	var tables []tableRef
	kindChecked := false
	if req.SQL != nil {
		d.tables = splitTables(d.tables, req.SQL.Tables)
		tables = d.tables
		// Every SQL rule of the list accepts the statement kind.
		kindChecked = true
	}
	off := l.off
	for g := 0; g < 3; g++ {
		list := f.arena[off : off+l.n[g]]
		off += l.n[g]
		matched := d.matched[:0]
		for _, c := range list {
			if e.rules[c].match(req, tables, kindChecked) {
				matched = append(matched, c)
			}
		}
		d.matched = matched
		if len(matched) == 0 {
			continue
		}
		win := listOrder[g]
		d.setWinner(win, &e.rules[matched[0]], len(matched))
		for _, c := range matched {
			d.addWinner(&e.rules[c])
		}
		if win == effDeny {
			return
		}
		maskOff := l.off + l.n[0] + l.n[1] + l.n[2]
		for _, c := range f.arena[maskOff : maskOff+l.n[3]] {
			r := &e.rules[c]
			if r.match(req, tables, kindChecked) {
				d.addMask(r)
			}
		}
		return
	}
	d.Effect = bundle.EffectDeny
	if req.SQL != nil && cls < len(f.kinds) {
		slot := &f.reasons[pair*len(f.kinds)+cls]
		if p := slot.Load(); p != nil {
			d.Reason = *p
			return
		}
		k := defaultDenyKey(req, ri.name)
		s := k.format()
		if f.nReasons.Add(1) <= maxCachedReasons {
			slot.Store(&s)
		}
		d.Reason = s
		return
	}
	d.Reason = e.reasons.get(defaultDenyKey(req, ri.name))
}
