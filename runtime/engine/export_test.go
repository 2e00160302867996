package engine

// ReferenceDecide exposes the index-free reference decision to the external
// test package.
func ReferenceDecide(e *Engine, req *Request) Decision { return referenceDecide(e, req) }
