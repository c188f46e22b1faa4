package onvif

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"time"
)

// CreatedLayout is how a UsernameToken's Created is written (UTC, to the
// millisecond).
const CreatedLayout = "2006-01-02T15:04:05.000Z"

// PasswordDigest is the UsernameToken profile's digest:
// Base64(SHA-1(nonce + created + password)), nonce being the raw bytes
// (not their base64 form).
func PasswordDigest(nonce []byte, created, password string) string {
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

type securityXML struct {
	XMLName        xml.Name `xml:"wsse:Security"`
	NSWSSE         string   `xml:"xmlns:wsse,attr"`
	NSWSU          string   `xml:"xmlns:wsu,attr"`
	NSS            string   `xml:"xmlns:s,attr"`
	MustUnderstand string   `xml:"s:mustUnderstand,attr"`
	Token          struct {
		Username string `xml:"wsse:Username"`
		Password struct {
			Type  string `xml:"Type,attr"`
			Value string `xml:",chardata"`
		} `xml:"wsse:Password"`
		Nonce struct {
			EncodingType string `xml:"EncodingType,attr"`
			Value        string `xml:",chardata"`
		} `xml:"wsse:Nonce"`
		Created string `xml:"wsu:Created"`
	} `xml:"wsse:UsernameToken"`
}

// securityHeader is a WS-Security header with a UsernameToken whose
// password digest is dated at now (the camera's time).
func securityHeader(user, password string, now time.Time) ([]byte, error) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read does not fail on Linux
	created := now.UTC().Format(CreatedLayout)
	var s securityXML
	s.NSWSSE, s.NSWSU, s.NSS, s.MustUnderstand = NSWSSE, NSWSU, NSSOAP, "1"
	s.Token.Username = user
	s.Token.Password.Type = PasswordDigestType
	s.Token.Password.Value = PasswordDigest(nonce, created, password)
	s.Token.Nonce.EncodingType = Base64Binary
	s.Token.Nonce.Value = base64.StdEncoding.EncodeToString(nonce)
	s.Token.Created = created
	return xml.Marshal(s)
}
