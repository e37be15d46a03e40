package password

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Length limits, in Unicode code points after NFC normalisation.
const (
	MinLength = 12
	MaxLength = 128
)

// maxCheckBytes bounds the input before normalisation: 128 code points are at
// most 512 bytes of UTF-8, so anything far beyond is too long without looking.
const maxCheckBytes = 4 * 4 * MaxLength

// Check applies the password policy to a new password (NIST SP 800-63B style:
// length and a blocklist, no composition rules). email is the account's
// address, used to refuse passwords built from its local part; it may be
// empty. The checks, in order:
//
//   - 12 to 128 characters (code points after NFC), valid UTF-8;
//   - must not contain the email's local part, or a piece of it of four or
//     more characters ("jane" of "jane.doe@…");
//   - must not be one short unit repeated ("aaaaaaaaaaaa", "abababababab");
//   - must not be made of a few keyboard, alphabet or digit runs
//     ("qwertyuiop1234", "abcdefghijkl", "1qaz2wsx3edc");
//   - must not be, at its base, on the embedded list of common passwords
//     (common.txt) or the service's own name: the base is the lower-cased
//     password with weak leading/trailing digit-and-symbol affixes removed
//     ("2024!", "123456", "01011990"), leetspeak undone ("p@ssw0rd"), spaces
//     removed and a repetition collapsed ("passwordpassword").
//
// The embedded list is a compact, hand-written one (about 1,500 entries), not
// a breach corpus: the derived checks above make up for much of its size.
// Check does not hash; call it before Hash when a password is set or changed,
// never at login.
func Check(pw, email string) error {
	if len(pw) > maxCheckBytes {
		return ErrTooLong
	}
	if !utf8.ValidString(pw) {
		return ErrNotUTF8
	}
	pw = norm.NFC.String(pw)
	switch n := utf8.RuneCountInString(pw); {
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	}
	s := []rune(strings.ToLower(pw))
	switch {
	case containsEmail(string(s), email):
		return ErrContainsEmail
	case period(s) <= 3:
		return ErrRepeated
	case isSequence(s):
		return ErrSequence
	case isCommon(s):
		return ErrCommon
	}
	return nil
}

//go:embed common.txt
var commonTxt string

// common is the lower-cased blocklist plus context words (the service name).
var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 2048)
	for line := range strings.SplitSeq(commonTxt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	for _, w := range []string{"openvisit", "open visit"} {
		m[w] = struct{}{}
	}
	return m
}()

func containsEmail(lower, email string) bool {
	local := strings.ToLower(email)
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	local, _, _ = strings.Cut(local, "+") // sub-addressing tag
	isSep := func(r rune) bool { return strings.ContainsRune(".-_+ ", r) }
	cands := []string{local, strings.Join(strings.FieldsFunc(local, isSep), "")}
	for _, part := range strings.FieldsFunc(local, isSep) {
		if utf8.RuneCountInString(part) >= 4 {
			cands = append(cands, part)
		}
	}
	for _, c := range cands {
		if utf8.RuneCountInString(c) >= 3 && strings.Contains(lower, c) {
			return true
		}
	}
	return false
}

// period returns the smallest p such that s[i] == s[i-p] for every i >= p
// (len(s) when s does not repeat).
func period(s []rune) int {
outer:
	for p := 1; p < len(s); p++ {
		for i := p; i < len(s); i++ {
			if s[i] != s[i-p] {
				continue outer
			}
		}
		return p
	}
	return len(s)
}

// sequences are the orderings whose neighbours count as a "walk": alphabet,
// digits, keyboard rows (QWERTY, shifted, AZERTY, QWERTZ), keyboard columns
// and the numeric keypad.
var sequences = []string{
	"abcdefghijklmnopqrstuvwxyz",
	"01234567890",
	"`1234567890-=", "~!@#$%^&*()_+",
	"qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./",
	"azertyuiop", "qsdfghjklm", "wxcvbn", "qwertzuiop", "yxcvbnm",
	"1qaz", "2wsx", "3edc", "4rfv", "5tgb", "6yhn", "7ujm", "8ik,", "9ol.", "0p;/",
	"!qaz", "@wsx", "#edc", "$rfv", "%tgb", "^yhn", "&ujm",
	"789", "456", "123", "741", "852", "963", "159", "357",
}

// adjacent holds every neighbour pair of the sequences, both ways.
var adjacent = func() map[[2]rune]bool {
	m := make(map[[2]rune]bool)
	for _, seq := range sequences {
		r := []rune(seq)
		for i := 1; i < len(r); i++ {
			m[[2]rune{r[i-1], r[i]}] = true
			m[[2]rune{r[i], r[i-1]}] = true
		}
	}
	return m
}()

// isSequence reports whether s splits into at most four runs of three or more
// characters, each a walk over neighbouring keys or letters (a repeated
// character counts as a step too).
func isSequence(s []rune) bool {
	runs, start := 0, 0
	for i := 1; i <= len(s); i++ {
		if i < len(s) && (s[i] == s[i-1] || adjacent[[2]rune{s[i-1], s[i]}]) {
			continue
		}
		if i-start < 3 {
			return false
		}
		runs++
		start = i
	}
	return runs <= 4
}

var leet = strings.NewReplacer("@", "a", "4", "a", "3", "e", "0", "o", "$", "s", "5", "s",
	"7", "t", "+", "t", "!", "i", "|", "l", "8", "b", "9", "g", "6", "g")

// isCommon reports whether a base form of s is on the blocklist.
func isCommon(s []rune) bool {
	str := string(s)
	nospace := strings.ReplaceAll(str, " ", "")
	bases := []string{str, nospace, stripAffixes(str), stripAffixes(nospace)}
	for _, b := range bases[:4] {
		if r := []rune(b); period(r) < len(r) {
			bases = append(bases, string(r[:period(r)]))
		}
	}
	var cands []string
	for _, b := range bases {
		stripped := stripAffixes(b)
		for _, c := range []string{b, stripped} {
			for _, one := range []string{"i", "l"} {
				d := leet.Replace(strings.ReplaceAll(c, "1", one))
				cands = append(cands, c, d, stripAffixes(d))
			}
		}
	}
	for _, c := range cands {
		if _, ok := common[c]; ok {
			return true
		}
	}
	return false
}

// stripAffixes removes a weak leading and a weak trailing run of non-letters.
func stripAffixes(s string) string {
	r := []rune(s)
	i := 0
	for i < len(r) && !unicode.IsLetter(r[i]) {
		i++
	}
	j := len(r)
	for j > i && !unicode.IsLetter(r[j-1]) {
		j--
	}
	if i == len(r) { // no letters at all: nothing to strip to
		return s
	}
	if !weakAffix(r[:i]) {
		i = 0
	}
	if !weakAffix(r[j:]) {
		j = len(r)
	}
	return string(r[i:j])
}

// weakAffix reports whether a run of non-letters adds little: at most four
// characters, or, once up to three symbols are trimmed from its ends, digits
// that repeat, walk, or look like a date.
func weakAffix(r []rune) bool {
	if len(r) <= 4 {
		return true
	}
	d := []rune(strings.TrimFunc(string(r), func(c rune) bool { return !unicode.IsDigit(c) }))
	if len(r)-len(d) > 3 {
		return false
	}
	if len(d) <= 4 || period(d) <= 4 || isSequence(d) {
		return true
	}
	if len(d) == 6 || len(d) == 8 { // ddmmyy, mmddyyyy, yyyymmdd …
		ds := string(d)
		for _, y := range []string{"19", "20"} {
			if strings.HasPrefix(ds, y) || (len(d) == 8 && strings.HasPrefix(ds[4:], y)) {
				return true
			}
		}
		return len(d) == 6
	}
	return false
}
