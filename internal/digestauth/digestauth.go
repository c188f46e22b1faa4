// Package digestauth answers HTTP and RTSP authentication challenges: Basic,
// and Digest as RFC 2617 and RFC 7616 define it (MD5, MD5-sess, SHA-256,
// SHA-256-sess; qop "auth", or none for RFC 2069 servers). The ONVIF
// client and the RTSP prober share it.
package digestauth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// Challenge is one WWW-Authenticate header: its scheme ("basic" or
// "digest", lower case) and its parameters (names lower case).
type Challenge struct {
	Scheme string
	Params map[string]string
}

// Parse reads WWW-Authenticate header values, one challenge each. Values it
// cannot read are skipped.
func Parse(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		if ch, ok := parseOne(v); ok {
			out = append(out, ch)
		}
	}
	return out
}

func parseOne(v string) (Challenge, bool) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	if scheme == "" {
		return Challenge{}, false
	}
	ch := Challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		name = strings.ToLower(strings.TrimSpace(strings.TrimLeft(name, ", ")))
		after = strings.TrimLeft(after, " ")
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
		}
		ch.Params[name] = val
		rest = strings.TrimLeft(rest, ", ")
	}
	return ch, true
}

// Pick chooses the challenge to answer: Digest with the strongest
// algorithm this package knows, else Basic. ok is false when there is
// neither.
func Pick(chs []Challenge) (Challenge, bool) {
	best, rank := Challenge{}, 0
	for _, ch := range chs {
		r := 0
		switch ch.Scheme {
		case "basic":
			r = 1
		case "digest":
			switch strings.ToUpper(ch.Params["algorithm"]) {
			case "", "MD5", "MD5-SESS":
				r = 2
			case "SHA-256", "SHA-256-SESS":
				r = 3
			}
		}
		if r > rank {
			best, rank = ch, r
		}
	}
	return best, rank > 0
}

// Stale says whether a Digest challenge only refuses an expired nonce (the
// credentials were right): RFC 7616 stale=true.
func (ch Challenge) Stale() bool {
	return ch.Scheme == "digest" && strings.EqualFold(ch.Params["stale"], "true")
}

// ErrUnsupported is returned for a challenge this package cannot answer.
var ErrUnsupported = errors.New("unsupported authentication challenge")

// Authorization returns the Authorization header that answers ch for a
// request (method, uri as it appears in the request line). nc counts the
// requests made with this challenge's nonce, from 1. It holds a hash of the
// password (Digest) or the password itself, encoded (Basic): never log it.
func (ch Challenge) Authorization(method, uri, user, password string, nc int) (string, error) {
	switch ch.Scheme {
	case "basic":
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)), nil
	case "digest":
		return ch.digest(method, uri, user, password, nc, cnonce())
	}
	return "", fmt.Errorf("%w: %s", ErrUnsupported, ch.Scheme)
}

func (ch Challenge) digest(method, uri, user, password string, nc int, cn string) (string, error) {
	p := ch.Params
	algo := strings.ToUpper(p["algorithm"])
	var newHash func() hash.Hash
	switch strings.TrimSuffix(algo, "-SESS") {
	case "", "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return "", fmt.Errorf("%w: digest algorithm %s", ErrUnsupported, algo)
	}
	if strings.EqualFold(p["userhash"], "true") {
		return "", fmt.Errorf("%w: digest userhash", ErrUnsupported)
	}
	h := func(s string) string {
		x := newHash()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	realm, nonce := p["realm"], p["nonce"]
	if nonce == "" {
		return "", fmt.Errorf("%w: digest without a nonce", ErrUnsupported)
	}
	qop := ""
	if q, ok := p["qop"]; ok {
		opts := strings.Split(strings.ReplaceAll(q, " ", ""), ",")
		if !slices.Contains(opts, "auth") {
			return "", fmt.Errorf("%w: digest qop %q", ErrUnsupported, q)
		}
		qop = "auth"
	}
	ncs := fmt.Sprintf("%08x", nc)
	ha1 := h(user + ":" + realm + ":" + password)
	if strings.HasSuffix(algo, "-SESS") {
		ha1 = h(ha1 + ":" + nonce + ":" + cn)
	}
	ha2 := h(method + ":" + uri)
	var resp string
	if qop == "" {
		resp = h(ha1 + ":" + nonce + ":" + ha2)
	} else {
		resp = h(ha1 + ":" + nonce + ":" + ncs + ":" + cn + ":" + qop + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, nonce=%s, uri=%s, response=%s`,
		quote(user), quote(realm), quote(nonce), quote(uri), quote(resp))
	if p["algorithm"] != "" {
		b.WriteString(", algorithm=" + p["algorithm"])
	}
	if o, ok := p["opaque"]; ok {
		b.WriteString(", opaque=" + quote(o))
	}
	if qop != "" {
		fmt.Fprintf(&b, ", qop=%s, nc=%s, cnonce=%s", qop, ncs, quote(cn))
	}
	return b.String(), nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func cnonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on Linux
	return hex.EncodeToString(b)
}
