package phi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"slices"
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

// IndexKey is one blind-index key: its ID, recorded beside every token it
// made (patients.bidx_key_id, patient_name_tokens.key_id), and the key.
// Every token of one patient is made under one IndexKey.
type IndexKey struct {
	ID  int32
	key []byte
}

func (k IndexKey) mac(idx Index, v string) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(idx))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return h.Sum(nil)
}

// Email is the blind index of an email address; nil when it is empty.
func (k IndexKey) Email(email string) []byte {
	if e := NormaliseEmail(email); e != "" {
		return k.mac(IndexEmail, e)
	}
	return nil
}

// DOB is the blind index of a date of birth; nil when it is not a date.
func (k IndexKey) DOB(dob string) []byte {
	if d, ok := NormaliseDOB(dob); ok {
		return k.mac(IndexDOB, d)
	}
	return nil
}

// Names are the tokens a name is indexed under.
func (k IndexKey) Names(name string) [][]byte {
	return k.macs(IndexNamePrefixes, namePrefixes(name))
}

// Search are the distinct tokens a name search must all match (none: the
// search is empty). ok is false when the search can match nobody (its
// words are all shorter than MinPrefix). Under two keys a search gives as
// many tokens, one per distinct prefix.
func (k IndexKey) Search(q string) (toks [][]byte, ok bool) {
	prefixes, ok := queryPrefixes(q)
	if !ok {
		return nil, false
	}
	slices.Sort(prefixes)
	return k.macs(IndexNamePrefixes, slices.Compact(prefixes)), true
}

func (k IndexKey) macs(idx Index, values []string) [][]byte {
	out := make([][]byte, len(values))
	for i, v := range values {
		out[i] = k.mac(idx, v)
	}
	return out
}

// IndexKeys are every blind-index key there is, oldest first: the last is
// the one new indexes are written under, and a search computes its tokens
// under each (rows keep an older key's tokens until a re-index reaches
// them). It reads the list from the database at every call, so a process
// picks up a key that another made, and forgets a retired one, at its next
// index use. With no index key yet it makes generation 1.
func (c *Cipher) IndexKeys(ctx context.Context) ([]IndexKey, error) {
	if c == nil {
		return nil, ErrNoKeyring
	}
	return c.ks.indexKeys(ctx)
}

// CurrentIndexKey is the index key new indexes are written under: the
// newest (IndexKeys).
func (c *Cipher) CurrentIndexKey(ctx context.Context) (IndexKey, error) {
	ks, err := c.IndexKeys(ctx)
	if err != nil {
		return IndexKey{}, err
	}
	return ks[len(ks)-1], nil
}

// MaxMRN bounds a medical record number ("system|value").
const MaxMRN = 300

// NormaliseMRN is a medical record number as its index sees it: the
// system and the value, trimmed, joined by "|" (FHIR's token search form).
// The value is case-sensitive, as FHIR identifiers are.
func NormaliseMRN(system, value string) string {
	return strings.TrimSpace(system) + "|" + strings.TrimSpace(value)
}

// MRN is the blind index of a normalised medical record number; nil when
// it is empty.
func (k IndexKey) MRN(mrn string) []byte {
	if mrn != "" {
		return k.mac(IndexMRN, mrn)
	}
	return nil
}
