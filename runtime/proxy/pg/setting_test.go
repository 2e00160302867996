package pg

import (
	"errors"
	"testing"
)

func TestCheckSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, param, value string
		unsafe             bool
	}{
		{"scs on", "standard_conforming_strings", "on", false},
		{"scs off", "standard_conforming_strings", "off", true},
		{"scs upper case name", "Standard_Conforming_Strings", "OFF", true},
		{"utf8", "client_encoding", "UTF8", false},
		{"sql ascii", "client_encoding", "SQL_ASCII", false},
		{"latin1", "client_encoding", "LATIN1", false},
		{"sjis", "client_encoding", "SJIS", true},
		{"shift_jis_2004", "client_encoding", "shift_jis_2004", true},
		{"big5", "client_encoding", "big5", true},
		{"gbk alias", "client_encoding", "cp936", true},
		{"gb18030", "client_encoding", "GB18030", true},
		{"other parameter", "application_name", "SJIS", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkSetting(c.param, c.value)
			if got := errors.Is(err, ErrUnsafeSetting); got != c.unsafe {
				t.Fatalf("checkSetting(%s, %s) = %v, want unsafe %v", c.param, c.value, err, c.unsafe)
			}
			if c.unsafe && RenderError(err).Code != "22023" {
				t.Errorf("SQLSTATE %s, want 22023", RenderError(err).Code)
			}
		})
	}
}
