package guardrail

import (
	"context"
	"strings"
	"testing"
)

// detect returns the PII found in text by a guard with every detector on,
// as "TYPE:match".
func detect(t *testing.T, text string) []string {
	t.Helper()
	var ents []PIIEntity
	for _, n := range PIITypes() {
		ents = append(ents, PIIEntity{Type: n, Actions: Actions{Action: Anonymize}})
	}
	g := mustCompile(t, Policy{SensitiveInformation: SensitiveInformationPolicy{PIIEntities: ents}})
	var out []string
	for _, f := range g.scan(text, Input, nil) {
		out = append(out, f.Type+":"+f.Match)
	}
	return out
}

func mustCompile(t testing.TB, p Policy) *Guard {
	t.Helper()
	if p.Name == "" {
		p.Name = "test"
	}
	if p.BlockedInputMessaging == "" {
		p.BlockedInputMessaging = "Sorry, I can't take that request."
	}
	if p.BlockedOutputsMessaging == "" {
		p.BlockedOutputsMessaging = "Sorry, I can't answer that."
	}
	g, err := Compile(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPIIDetectors(t *testing.T) {
	cases := []struct {
		name, text string
		want       string // "TYPE:match", or "" for none
	}{
		// E-mail.
		{"email", "write to jane.doe+news@example.co.uk today", "EMAIL:jane.doe+news@example.co.uk"},
		{"email at end of sentence", "Mail bob@corp.io.", "EMAIL:bob@corp.io"},
		{"email needs a dot in the domain", "ssh root@localhost now", ""},
		{"email needs a letter TLD", "user@10.0.0.1x", ""},
		{"handle is not an email", "ping @channel please", ""},

		// Phone numbers.
		{"US with country code and parens", "Call +1 (415) 555-0132 now", "PHONE:+1 (415) 555-0132"},
		{"UK international", "Office: +44 20 7946 0958.", "PHONE:+44 20 7946 0958"},
		{"Germany with 00 prefix", "Tel 0049 30 1234567", "PHONE:0049 30 1234567"},
		{"France", "Appelez +33 1 42 68 53 00", "PHONE:+33 1 42 68 53 00"},
		{"Japan", "Tokyo +81-3-1234-5678", "PHONE:+81-3-1234-5678"},
		{"India compact", "WhatsApp +919876543210", "PHONE:+919876543210"},
		{"NANP dashes", "call 415-555-0132 2 times", "PHONE:415-555-0132"},
		{"NANP parens", "(212) 555-0199", "PHONE:(212) 555-0199"},
		{"NANP dots", "fax 617.555.0100", "PHONE:617.555.0100"},
		{"NANP with trunk 1", "1-800-555-0199", "PHONE:1-800-555-0199"},
		{"UK national", "ring 020 7946 0958", "PHONE:020 7946 0958"},
		{"date is not a phone", "on 2024-01-15 we met", ""},
		{"area code 0xx is not NANP", "ref 055-555-0132", ""},
		{"bare digits are not a phone", "order 4155550132 shipped", ""},
		{"short local number", "ext 555-0132", ""},
		{"too many digits after +", "+1234567890123456", ""},

		// Cards.
		{"visa grouped", "card 4111 1111 1111 1111 exp", "CREDIT_DEBIT_CARD_NUMBER:4111 1111 1111 1111"},
		{"mastercard dashes", "5500-0000-0000-0004", "CREDIT_DEBIT_CARD_NUMBER:5500-0000-0000-0004"},
		{"amex 4-6-5", "amex 3782 822463 10005", "CREDIT_DEBIT_CARD_NUMBER:3782 822463 10005"},
		{"visa compact", "pay with 4012888888881881", "CREDIT_DEBIT_CARD_NUMBER:4012888888881881"},
		{"discover", "6011111111111117", "CREDIT_DEBIT_CARD_NUMBER:6011111111111117"},
		{"luhn failure", "card 4111 1111 1111 1112", ""},
		{"bad grouping", "4111 11111 111 1111", ""},
		{"card prefix 9 is not a network", "9111111111111111", ""},
		{"twenty digits", "41111111111111111113", ""},

		// SSNs.
		{"ssn", "SSN 078-05-1120", "US_SOCIAL_SECURITY_NUMBER:078-05-1120"},
		{"ssn spaces", "ssn 123 45 6789", "US_SOCIAL_SECURITY_NUMBER:123 45 6789"},
		{"ssn area 000", "000-12-3456", ""},
		{"ssn area 666", "666-12-3456", ""},
		{"ssn area 9xx", "912-12-3456", ""},
		{"ssn group 00", "123-00-4567", ""},
		{"ssn serial 0000", "123-45-0000", ""},
		{"ssn without separators is ambiguous", "123456789", ""},

		// IBAN.
		{"iban grouped", "IBAN DE89 3704 0044 0532 0130 00 ok", "INTERNATIONAL_BANK_ACCOUNT_NUMBER:DE89 3704 0044 0532 0130 00"},
		{"iban compact", "GB82WEST12345698765432", "INTERNATIONAL_BANK_ACCOUNT_NUMBER:GB82WEST12345698765432"},
		{"iban bad checksum", "GB82WEST12345698765433", ""},
		{"iban wrong length", "DE89370400440532013", ""},

		// IP addresses.
		{"ipv4", "host 192.168.1.20 is down", "IP_ADDRESS:192.168.1.20"},
		{"ipv4 octet range", "version 300.1.2.3", ""},
		{"ipv6", "addr 2001:db8:85a3::8a2e:370:7334 up", "IP_ADDRESS:2001:db8:85a3::8a2e:370:7334"},
		{"ipv6 loopback", "bind ::1 only", "IP_ADDRESS:::1"},
		{"time is not ipv6", "at 12:30:45 today", ""},
		{"version dots", "v1.2.3.4", ""},

		// URLs.
		{"url", "see https://example.com/a?b=c, then", "URL:https://example.com/a?b=c"},
		{"www url", "visit www.example.org.", "URL:www.example.org"},
		{"url in parens", "(https://en.wikipedia.org/wiki/Go_(language))", "URL:https://en.wikipedia.org/wiki/Go_(language)"},
		{"http alone", "the http:// scheme", ""},

		// AWS keys.
		{"access key", "key AKIAIOSFODNN7EXAMPLE here", "AWS_ACCESS_KEY:AKIAIOSFODNN7EXAMPLE"},
		{"temporary key", "ASIAY34FZKBOKMUTVV7A", "AWS_ACCESS_KEY:ASIAY34FZKBOKMUTVV7A"},
		{"access key too short", "AKIAIOSFODNN7EXAMPL", ""},
		{"secret key after hint", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_KEY:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{"40-char token without hint", "sha wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},

		// MAC and SIN.
		{"mac", "mac 00:1A:2B:3C:4D:5E", "MAC_ADDRESS:00:1A:2B:3C:4D:5E"},
		{"sin", "SIN 130 692 544", "CA_SOCIAL_INSURANCE_NUMBER:130 692 544"},
		{"sin luhn failure", "SIN 130 692 545", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := detect(t, tc.text)
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("%q: found %q, want nothing", tc.text, got)
				}
				return
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("%q: found %q, want [%s]", tc.text, got, tc.want)
			}
		})
	}
}

func TestUnsupportedPIITypeIsExplained(t *testing.T) {
	p := Policy{Name: "x", BlockedInputMessaging: "a", BlockedOutputsMessaging: "b",
		SensitiveInformation: SensitiveInformationPolicy{PIIEntities: []PIIEntity{{Type: "NAME"}}}}
	probs := strings.Join(p.Validate("guardrails[0]"), "\n")
	if !strings.Contains(probs, `guardrails[0].sensitive_information_policy.pii_entities[0].type: "NAME" is not detected by Junction`) {
		t.Errorf("problems: %s", probs)
	}
	_ = context.Background()
}
