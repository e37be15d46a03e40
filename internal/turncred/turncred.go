// Package turncred is the TURN relay credential scheme, REST style
// (draft-uberti-behave-turn-rest): the username is "<expiry unix
// seconds>:<participant ID>" and the password the HMAC-SHA1 of the username
// under a secret the control plane and the relays share. The control plane
// mints credentials without talking to a relay (signaling), the relay
// checks them (sfu/turn); both import this one definition.
package turncred

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST credential scheme is HMAC-SHA1
	"encoding/base64"
	"strconv"
	"time"
)

// Credentials returns TURN credentials for participant valid until expiry:
// user is "<expiry>:<participant>", pass is base64(HMAC-SHA1(secret, user)).
func Credentials(secret []byte, participant string, expiry time.Time) (user, pass string) {
	user = strconv.FormatInt(expiry.Unix(), 10) + ":" + participant
	return user, Password(secret, user)
}

// Password is the password of user under secret.
func Password(secret []byte, user string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(user))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
