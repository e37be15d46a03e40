package config

import (
	"errors"
	"strings"
	"time"
	_ "time/tzdata" // clinic.time_zone must resolve on a machine without a zoneinfo database
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
	// TimeZone is the clinic's IANA time zone (e.g. "America/Los_Angeles"),
	// in which the invite email states the visit's time: the server does not
	// know the patient's zone. The calendar file carries UTC, which calendar
	// apps show in the patient's own zone; the pages use the browser's.
	// Empty: UTC.
	TimeZone string `yaml:"time_zone"`
}

// Location is the clinic's time zone (UTC when unset; Validate refuses an
// unknown name).
func (c Clinic) Location() *time.Location {
	if loc, err := time.LoadLocation(c.TimeZone); err == nil && c.TimeZone != "" {
		return loc
	}
	return time.UTC
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
	if _, err := time.LoadLocation(c.Clinic.TimeZone); err != nil || len(c.Clinic.TimeZone) > 64 {
		errs = append(errs, errors.New("clinic.time_zone: an IANA time zone name such as America/New_York (empty: UTC)"))
	}
	return errs
}
