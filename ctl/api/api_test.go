package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a Backend test double that records which method ran with
// which argument and returns zero results, so Dispatch's routing and argument
// decoding can be checked command by command.
type recorder struct{ got string }

func (r *recorder) note(s string, a ...any) { r.got = fmt.Sprintf(s, a...) }

func (r *recorder) Status(context.Context) (Status, error) { r.note("Status"); return Status{}, nil }
func (r *recorder) Peers(context.Context) ([]Peer, error)  { r.note("Peers"); return nil, nil }
func (r *recorder) Stats(context.Context) (Stats, error)   { r.note("Stats"); return Stats{}, nil }
func (r *recorder) Routes(context.Context) ([]Route, error) {
	r.note("Routes")
	return nil, nil
}
func (r *recorder) RouteAdd(_ context.Context, s RouteSpec) (Route, error) {
	r.note("RouteAdd %s %s %s", s.Session, s.Port, time.Duration(s.TTL))
	return Route{Session: s.Session}, nil
}
func (r *recorder) RouteDel(_ context.Context, s string) error { r.note("RouteDel %s", s); return nil }
func (r *recorder) Score(context.Context) (Score, error)       { r.note("Score"); return Score{}, nil }
func (r *recorder) Cheques(context.Context) ([]Cheque, error)  { r.note("Cheques"); return nil, nil }
func (r *recorder) Enroll(_ context.Context, a string) (Peer, error) {
	r.note("Enroll %s", a)
	return Peer{Address: a}, nil
}
func (r *recorder) Unenroll(_ context.Context, p string) (Unenrolled, error) {
	r.note("Unenroll %s", p)
	return Unenrolled{Peer: p}, nil
}
func (r *recorder) Stop(context.Context) error { r.note("Stop"); return nil }
func (r *recorder) ConfigShow(context.Context) (ConfigState, error) {
	r.note("ConfigShow")
	return ConfigState{}, nil
}
func (r *recorder) ConfigApply(_ context.Context, a ConfigApplyArgs) (ConfigState, error) {
	r.note("ConfigApply %d %s", len(a.Config), time.Duration(a.ConfirmWithin))
	return ConfigState{}, nil
}
func (r *recorder) ConfigConfirm(context.Context) (ConfigState, error) {
	r.note("ConfigConfirm")
	return ConfigState{}, nil
}
func (r *recorder) ConfigRollback(context.Context) (ConfigState, error) {
	r.note("ConfigRollback")
	return ConfigState{}, errors.New("disk on fire")
}
func (r *recorder) Trace(_ context.Context, a TraceArgs) (Trace, error) {
	r.note("Trace %s %d", a.Port, a.Count)
	return Trace{}, nil
}
func (r *recorder) JournalVerify(context.Context) (JournalSummary, error) {
	r.note("JournalVerify")
	return JournalSummary{}, nil
}

func TestDispatchRoutesEveryCommand(t *testing.T) {
	cases := []struct {
		line string
		want string
		code Code // "" for success
	}{
		{`{"v":1,"cmd":"status"}`, "Status", ""},
		{`{"v":1,"cmd":"status","args":{}}`, "Status", ""},
		{`{"v":1,"cmd":"status","args":null}`, "Status", ""},
		{`{"v":1,"cmd":"peers"}`, "Peers", ""},
		{`{"v":1,"cmd":"stats"}`, "Stats", ""},
		{`{"v":1,"cmd":"routes"}`, "Routes", ""},
		{`{"v":1,"cmd":"route.add","args":{"session":"aa","port":"p1","ttl":"1m"}}`, "RouteAdd aa p1 1m0s", ""},
		{`{"v":1,"cmd":"route.add","args":{"ttl":"soon"}}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"route.del","args":{"session":"aa"}}`, "RouteDel aa", ""},
		{`{"v":1,"cmd":"route.del"}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"score"}`, "Score", ""},
		{`{"v":1,"cmd":"cheques"}`, "Cheques", ""},
		{`{"v":1,"cmd":"enroll","args":{"address":"192.0.2.9:9254"}}`, "Enroll 192.0.2.9:9254", ""},
		{`{"v":1,"cmd":"enroll","args":{}}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"unenroll","args":{"peer":"ab"}}`, "Unenroll ab", ""},
		{`{"v":1,"cmd":"unenroll"}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"stop"}`, "Stop", ""},
		{`{"v":1,"cmd":"config.show"}`, "ConfigShow", ""},
		{`{"v":1,"cmd":"config.apply","args":{"config":"x=1","confirm_within":"60s"}}`, "ConfigApply 3 1m0s", ""},
		{`{"v":1,"cmd":"config.confirm"}`, "ConfigConfirm", ""},
		{`{"v":1,"cmd":"config.rollback"}`, "ConfigRollback", CodeInternal},
		{`{"v":1,"cmd":"trace","args":{"port":"p0","count":5}}`, "Trace p0 5", ""},
		{`{"v":1,"cmd":"trace","args":{"port":"p0","count":5000}}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"trace","args":{"count":5}}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"journal.verify"}`, "JournalVerify", ""},
		{`{"v":1,"cmd":"stop","args":{"now":true}}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"stop","args":[1]}`, "", CodeInvalidArgument},
		{`{"v":1,"cmd":"nope"}`, "", CodeUnknownCommand},
		{`{"v":3,"cmd":"status"}`, "", CodeUnsupportedVersion},
		{`{"v":1,"cmd":"status"}x`, "", CodeBadRequest},
		{``, "", CodeBadRequest},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		r := &recorder{}
		resp := Dispatch(context.Background(), r, []byte(tc.line))
		if resp.V != Version {
			t.Errorf("%s: response version %d", tc.line, resp.V)
		}
		if tc.code == "" {
			if !resp.OK || resp.Error != nil || resp.Result == nil {
				t.Errorf("%s: %+v %v", tc.line, resp, resp.Error)
			}
		} else if resp.OK || resp.Error == nil || resp.Error.Code != tc.code || resp.Result != nil {
			t.Errorf("%s: got %+v %+v, want code %s", tc.line, resp, resp.Error, tc.code)
		}
		if r.got != tc.want {
			t.Errorf("%s: backend saw %q, want %q", tc.line, r.got, tc.want)
		}
		var req Request
		if json.Unmarshal([]byte(tc.line), &req) == nil && tc.want != "" {
			seen[req.Cmd] = true
		}
	}
	for _, c := range Commands() {
		if !seen[c] {
			t.Errorf("command %s not exercised", c)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Errorf(CodeNotFound, "no peer %s", "ab"))
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Fatal("errors.Is does not match by code")
	}
	if e := AsError(err); e.Code != CodeNotFound || e.Message != "no peer ab" {
		t.Fatalf("AsError = %+v", e)
	}
	if e := AsError(errors.New("boom")); e.Code != CodeInternal || e.Message != "boom" {
		t.Fatalf("AsError(plain) = %+v", e)
	}
	for c, want := range map[Code]int{
		CodeBadRequest: ExitUsage, CodeTooLarge: ExitUsage, CodeUnsupportedVersion: ExitUsage,
		CodeUnknownCommand: ExitUsage, CodeInvalidArgument: ExitUsage,
		CodePermissionDenied: ExitFailure, CodeNotFound: ExitFailure, CodeConflict: ExitFailure,
		CodeUnavailable: ExitFailure, CodeInternal: ExitFailure,
	} {
		if got := c.ExitCode(); got != want {
			t.Errorf("%s.ExitCode() = %d, want %d", c, got, want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(ConfigApplyArgs{ConfirmWithin: Duration(90 * time.Second)})
	if err != nil || !strings.Contains(string(b), `"confirm_within":"1m30s"`) {
		t.Fatalf("%s %v", b, err)
	}
	var a ConfigApplyArgs
	if err := json.Unmarshal(b, &a); err != nil || a.ConfirmWithin != Duration(90*time.Second) {
		t.Fatalf("%+v %v", a, err)
	}
}

// FuzzDispatch: any bytes get exactly one well-formed response and never
// a panic.
func FuzzDispatch(f *testing.F) {
	f.Add([]byte(`{"v":1,"cmd":"status"}`))
	f.Add([]byte(`{"v":1,"cmd":"trace","args":{"port":"p0","count":5,"timeout":"1s"}}`))
	f.Add([]byte(`{"v":1,"cmd":"config.apply","args":{"config":"a","confirm_within":"-1s"}}`))
	f.Add([]byte(`{"v":1,"cmd":"route.add","args":{"session":"aa","ttl":"9999999h"}}`))
	f.Add([]byte(`{"v":1e400}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		resp := Dispatch(context.Background(), &recorder{}, line)
		if resp.V != Version || resp.OK == (resp.Error != nil) || resp.OK != (resp.Result != nil) {
			t.Fatalf("malformed response %+v", resp)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatal(err)
		}
	})
}
