package config

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clinic holds what patients are told when something goes wrong: the
// clinic's help line. It is shown on the call page (delivered with the join
// grant) when the video connection cannot be made. Not PHI; not secret.
type Clinic struct {
	// HelpText is a short sentence, e.g. "Call the front desk, Mon–Fri 8–6."
	HelpText string `yaml:"help_text"`
	// HelpPhone is the number to call, e.g. "+1 555 0100".
	HelpPhone string `yaml:"help_phone"`
}

// Limits of the clinic's help line.
const (
	maxHelpText  = 300
	maxHelpPhone = 32
)

func (c Config) validateClinic() []error {
	var errs []error
	t, p := c.Clinic.HelpText, c.Clinic.HelpPhone
	if !utf8.ValidString(t) || utf8.RuneCountInString(t) > maxHelpText || strings.ContainsFunc(t, unicode.IsControl) {
		errs = append(errs, errors.New("clinic.help_text: at most 300 characters of plain text on one line"))
	}
	if len(p) > maxHelpPhone || strings.Trim(p, "0123456789+-(). ") != "" {
		errs = append(errs, errors.New("clinic.help_phone: at most 32 characters: digits, spaces and the signs + - ( ) and dot"))
	}
	return errs
}
