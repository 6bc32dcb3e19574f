package stages

import (
	"slices"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	r := newRedactor([]string{"IBAN"}, nil)
	cases := []struct {
		name, url, want string
		secrets         []string // among those found
	}{
		{"mixed params", "https://svc/score?account=42&amount=12.5&token=abc123",
			"https://svc/score?account=42&amount=12.5&token=REDACTED", []string{"abc123"}},
		{"secret-looking names", "https://svc/?api_key=k1&access_token=t1&client_secret=s1&password=p1&auth=a1&sig=g1&apiSig=g2&pwd=w1&id=7",
			"https://svc/?api_key=REDACTED&access_token=REDACTED&client_secret=REDACTED&password=REDACTED&auth=REDACTED&sig=REDACTED&apiSig=REDACTED&pwd=REDACTED&id=7", nil},
		{"presigned S3", "https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2024&X-Amz-Date=20240101T000000Z&X-Amz-Security-Token=tok&X-Amz-Signature=f00d",
			"https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20240101T000000Z&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED",
			[]string{"AKIA%2F2024", "AKIA/2024", "f00d"}},
		{"user and password", "https://alice:hunter22@svc/x?a=1", "https://REDACTED@svc/x?a=1", []string{"alice", "hunter22"}},
		{"user alone", "https://ghp_abcdef@svc/x", "https://REDACTED@svc/x", []string{"ghp_abcdef"}},
		{"encoded names", "https://svc/?api%5Fkey=k1&%54OKEN=t1&acc%6Funt=42", "https://svc/?api%5Fkey=REDACTED&%54OKEN=REDACTED&acc%6Funt=42", []string{"k1", "t1"}},
		{"repeated params", "https://svc/?token=a1&id=1&token=b2&id=2", "https://svc/?token=REDACTED&id=1&token=REDACTED&id=2", []string{"a1", "b2"}},
		{"the redact list", "https://svc/?account=42&iban=DE89370400440532013000", "https://svc/?account=42&iban=REDACTED", []string{"DE89370400440532013000"}},
		{"empty and bare values", "https://svc/?token=&debug&key", "https://svc/?token=&debug&key", nil},
		{"semicolons", "https://svc/?a=1;secret=s1", "https://svc/?a=1;secret=REDACTED", []string{"s1"}},
		{"escaped values", "https://svc/?q=a%20b&token=x%2By", "https://svc/?q=a%20b&token=REDACTED", []string{"x%2By", "x+y"}},
		{"fragment", "https://svc/cb#access_token=t1&state=s", "https://svc/cb#access_token=REDACTED&state=s", []string{"t1"}},
		{"names that only look close", "https://svc/?signal=1&design=2&monkey=3", "https://svc/?signal=1&design=2&monkey=REDACTED", nil},
		{"no query", "https://svc/a/b", "https://svc/a/b", nil},
		{"invalid", "http://[::1", "(an invalid URL)", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, secrets := r.url(c.url)
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			for _, s := range c.secrets {
				if !slices.Contains(secrets, s) {
					t.Errorf("secrets %q lack %q", secrets, s)
				}
			}
		})
	}
}

func TestRedactExcerpt(t *testing.T) {
	r := newRedactor([]string{"iban"}, map[string]string{"Authorization": "Bearer s3cr3t-bearer", "Accept": "application/json"})
	long := strings.Repeat("x", excerptRead)
	cases := []struct {
		name, body string
		more       bool
		secrets    []string
		want       string
	}{
		{"JSON as it is", `{"error":"amount over limit"}`, false, nil, `{"error":"amount over limit"}`},
		{"JSON nested fields", `{"error":"bad","details":{"user":{"Password":"hunter2","name":"bo"},"api_key":123,"items":[{"token":{"a":[1,"}"]}},{"n":null}],"IBAN":"DE89"}}`, false, nil,
			`{"error":"bad","details":{"user":{"Password":"REDACTED","name":"bo"},"api_key":"REDACTED","items":[{"token":"REDACTED"},{"n":null}],"IBAN":"REDACTED"}}`},
		{"JSON escaped names", `{"to\u006ben": "t1", "say \"key\"": 1, "a": "key"}`, false, nil, `{"to\u006ben": "REDACTED", "say \"key\"": "REDACTED", "a": "key"}`},
		{"JSON on many lines", "{\n  \"error\": \"bad\",\n\t\"secret\": \"s\"\n}\n", false, nil, `{ "error": "bad", "secret": "REDACTED" }`},
		{"JSON cut in a secret", `{"error":"x","token":"abcdef`, true, nil, `{"error":"x","token":"REDACTED"…`},
		{"JSON echoing the URL", `{"error":"bad","url":"/score?a=1&access_token=t0k3n&b=2"}`, false, nil, `{"error":"bad","url":"/score?a=1&access_token=REDACTED&b=2"}`},
		{"not JSON", "<html>\n<body>Bad request: token=abc123 rejected</body>\n</html>\n", false, nil, `<html> <body>Bad request: token=REDACTED rejected</body> </html>`},
		{"an echoed header", "invalid credentials s3cr3t-bearer", false, nil, "invalid credentials REDACTED"},
		{"other headers are no secret", "wants application/json", false, nil, "wants application/json"},
		{"an echoed query value", `{"error":"unknown key abc123XYZ"}`, false, []string{"abc123XYZ", "42"}, `{"error":"unknown key REDACTED"}`},
		{"an echo the read cut", "bad token s3cr3t-be", true, nil, "bad token…"},
		{"huge", long, true, nil, strings.Repeat("x", excerptMax) + "…"},
		{"long line cut", strings.Repeat("é", 150), false, nil, strings.Repeat("é", excerptMax/2) + "…"},
		{"binary", "\x1f\x8b\x08\x00\xff\x00ok\x7f\u2028", false, nil, `\x1f\x8b\x08\x00\xff\x00ok\x7f`},
		{"escapes never split", strings.Repeat("a", excerptMax-2) + "\x00", false, nil, strings.Repeat("a", excerptMax-2) + "…"},
		{"only white space", " \n\t ", false, nil, ""},
		{"empty", "", false, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.excerpt([]byte(c.body), c.more, c.secrets); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
