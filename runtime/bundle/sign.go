package bundle

import (
	"bytes"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// Sign adds key's signature to a bundle file and returns the signed
// envelope. file is a bare bundle or an envelope (unsigned or already signed
// by other keys); the bundle in it is decoded and validated first.
//
// A bare bundle or an unsigned envelope is re-encoded canonically before
// signing. An envelope that already carries signatures keeps its payload
// byte for byte, which must then be canonical; the new signature is appended.
// Signing twice with the same key is an error.
func Sign(file []byte, key *PrivateKey) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("sign bundle: no key")
	}
	b, env, err := DecodeFile(file)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	canon, err := Encode(b)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	if env == nil || len(env.Signatures) == 0 {
		env, err = NewEnvelope(b)
		if err != nil {
			return nil, fmt.Errorf("sign bundle: %w", err)
		}
	} else {
		payload, err := env.DecodePayload()
		if err != nil {
			return nil, fmt.Errorf("sign bundle: %w", err)
		}
		if !bytes.Equal(payload, canon) {
			return nil, fmt.Errorf("sign bundle: %w", reject(ErrMalformed, "signed payload is not in canonical encoding"))
		}
		for _, s := range env.Signatures {
			if s.KeyID == key.keyID {
				return nil, fmt.Errorf("sign bundle: already signed by key %s", key.keyID)
			}
		}
		if len(env.Signatures) >= MaxSignatures {
			return nil, fmt.Errorf("sign bundle: already %d signatures, the maximum", len(env.Signatures))
		}
	}

	// The DSSE signer computes PAE(PayloadType, payload) and signs it; take
	// its one signature and append it under our key id.
	signed, err := dsse.WrapSignerVerifier(key.sv, PayloadType).SignMessage(bytes.NewReader(canon))
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	one, err := ParseEnvelope(signed)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: signer output: %w", err)
	}
	if len(one.Signatures) != 1 {
		return nil, fmt.Errorf("sign bundle: signer returned %d signatures", len(one.Signatures))
	}
	out := *env
	out.Signatures = append(append([]Signature{}, env.Signatures...), Signature{KeyID: key.keyID, Sig: one.Signatures[0].Sig})
	return out.Marshal()
}
