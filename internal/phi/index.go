package phi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Blind indexes (docs/DESIGN.md decision 13): HMAC-SHA-256 under the
// blind-index key of a normalised value, domain-separated by index kind.
// A reader of the database learns which rows share a value (or, for names,
// a prefix of a word) and nothing else; without the key, guessing a value
// needs the key too.
//
// Name search uses prefix tokens: each word of a name (accents folded,
// lower-cased, apostrophes dropped) gives a token for each of its prefixes
// of MinPrefix to MaxPrefix characters; a search word matches a patient
// when its own token (of its first MaxPrefix characters) is among theirs.
// The trade-off: a database reader sees which patients share the first two
// or more letters of a name word, and a patient's token count hints at the
// length of their names. Two letters is the shortest search a provider
// types; one-letter tokens would make every name equal to a quarter of the
// others.

// Prefix lengths of name tokens, in characters.
const (
	MinPrefix = 2
	MaxPrefix = 24
)

// Token is one blind index value with the index key that made it.
type Token struct {
	KeyID int32
	MAC   []byte
}

// NormaliseEmail is an email address as its index sees it.
func NormaliseEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormaliseDOB is a date of birth as its index sees it (YYYY-MM-DD), and
// whether s is one.
func NormaliseDOB(s string) (string, bool) {
	d, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return "", false
	}
	return d.Format("2006-01-02"), true
}

// NameWords splits a name into normalised words: accents folded,
// lower-cased, apostrophes dropped ("O'Brien" is "obrien"), anything else
// that is not a letter or digit a separator.
func NameWords(s string) []string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r), r == '\'', r == '’', r == 'ʼ':
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(' ')
		}
	}
	return strings.Fields(b.String())
}

// namePrefixes are the distinct prefixes a name is indexed under.
func namePrefixes(name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range NameWords(name) {
		rs := []rune(w)
		for n := MinPrefix; n <= len(rs) && n <= MaxPrefix; n++ {
			if p := string(rs[:n]); !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// queryPrefixes are the prefixes a search must match: one per word of at
// least MinPrefix characters, cut to MaxPrefix. ok is false when the
// search has words but none long enough (it can match nothing).
func queryPrefixes(q string) (out []string, ok bool) {
	words := NameWords(q)
	for _, w := range words {
		rs := []rune(w)
		if len(rs) < MinPrefix {
			continue
		}
		out = append(out, string(rs[:min(len(rs), MaxPrefix)]))
	}
	return out, len(out) > 0 || len(words) == 0
}

func (c *Cipher) mac(ctx context.Context, idx Index, values []string) ([]Token, error) {
	if c == nil {
		return nil, ErrNoKeyring
	}
	k, err := c.ks.current(ctx, IndexPurpose, indexGeneration)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(values))
	for i, v := range values {
		h := hmac.New(sha256.New, k.key)
		h.Write([]byte(idx))
		h.Write([]byte{0})
		h.Write([]byte(v))
		out[i] = Token{KeyID: k.id, MAC: h.Sum(nil)}
	}
	return out, nil
}

// EmailIndex is the blind index of an email address; the zero Token when
// it is empty.
func (c *Cipher) EmailIndex(ctx context.Context, email string) (Token, error) {
	e := NormaliseEmail(email)
	if e == "" {
		return Token{}, nil
	}
	t, err := c.mac(ctx, IndexEmail, []string{e})
	if err != nil {
		return Token{}, err
	}
	return t[0], nil
}

// DOBIndex is the blind index of a date of birth; the zero Token when it
// is not a date.
func (c *Cipher) DOBIndex(ctx context.Context, dob string) (Token, error) {
	d, ok := NormaliseDOB(dob)
	if !ok {
		return Token{}, nil
	}
	t, err := c.mac(ctx, IndexDOB, []string{d})
	if err != nil {
		return Token{}, err
	}
	return t[0], nil
}

// NameTokens are the tokens a name is indexed under.
func (c *Cipher) NameTokens(ctx context.Context, name string) ([]Token, error) {
	return c.mac(ctx, IndexNamePrefixes, namePrefixes(name))
}

// SearchTokens are the tokens a name search must all match (none: the
// search is empty). ok is false when the search can match nobody (its
// words are all shorter than MinPrefix).
func (c *Cipher) SearchTokens(ctx context.Context, q string) (toks [][]byte, ok bool, err error) {
	prefixes, ok := queryPrefixes(q)
	if !ok || len(prefixes) == 0 {
		return nil, ok, nil
	}
	ts, err := c.mac(ctx, IndexNamePrefixes, prefixes)
	if err != nil {
		return nil, false, err
	}
	for _, t := range ts {
		toks = append(toks, t.MAC)
	}
	return toks, true, nil
}

// MaxMRN bounds a medical record number ("system|value").
const MaxMRN = 300

// NormaliseMRN is a medical record number as its index sees it: the
// system and the value, trimmed, joined by "|" (FHIR's token search form).
// The value is case-sensitive, as FHIR identifiers are.
func NormaliseMRN(system, value string) string {
	return strings.TrimSpace(system) + "|" + strings.TrimSpace(value)
}

// MRNIndex is the blind index of a normalised medical record number; the
// zero Token when it is empty.
func (c *Cipher) MRNIndex(ctx context.Context, mrn string) (Token, error) {
	if mrn == "" {
		return Token{}, nil
	}
	t, err := c.mac(ctx, IndexMRN, []string{mrn})
	if err != nil {
		return Token{}, err
	}
	return t[0], nil
}
