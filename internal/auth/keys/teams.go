package keys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Teams and projects organise keys: a key belongs to at most one team and,
// within it, to at most one project. The key's team and project become the
// tags team and project of every request it makes (the request cannot
// change them), so that usage groups by them and budgets and rate limits
// can name them.

// Team is a team.
type Team struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Project is a project of a team.
type Project struct {
	Team        string    `json:"team"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Kinds of errors of teams, projects and key limits; errors.Is tells
// them apart, and their messages say what to fix.
var (
	// ErrInvalid is a request that cannot be carried out as given.
	ErrInvalid = errors.New("invalid")
	// ErrMissing is a team or project that does not exist.
	ErrMissing = errors.New("does not exist")
	// ErrExists is a team or project that already exists.
	ErrExists = errors.New("already exists")
	// ErrInUse is a team or project that live keys (or, for a team,
	// projects) still belong to.
	ErrInUse = errors.New("in use")
)

// orgError is an error of one of the kinds above, with its own message.
type orgError struct {
	kind error
	msg  string
}

func (e *orgError) Error() string { return e.msg }
func (e *orgError) Unwrap() error { return e.kind }

func orgErr(kind error, format string, args ...any) error {
	return &orgError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// orgTags returns tags with team and project set from the key's own (the
// map is copied, never changed in place).
func orgTags(tags map[string]string, team, project string) map[string]string {
	if team == "" && project == "" {
		return tags
	}
	out := maps.Clone(tags)
	if out == nil {
		out = map[string]string{}
	}
	if team != "" {
		out["team"] = team
	}
	if project != "" {
		out["project"] = project
	}
	return out
}

// OrgTags overlays the key's team and project on tags (a request's tags
// merged over the key's), so that no request can change them. It returns
// tags itself when there is nothing to change.
func (k *Key) OrgTags(tags map[string]string) map[string]string {
	if (k.Team == "" || tags["team"] == k.Team) && (k.Project == "" || tags["project"] == k.Project) {
		return tags
	}
	return orgTags(tags, k.Team, k.Project)
}

// OrgTagNames are the tags that say whom a request's spend belongs to.
// They come from the key alone (its team and project, or the tags an
// admin gave it); a request's tags never set them.
var OrgTagNames = [...]string{"team", "project"}

// FreeTags returns a request's tags without the organisation tags (the
// map is copied when one is removed, never changed in place).
func FreeTags(request map[string]string) map[string]string {
	for _, name := range OrgTagNames {
		if _, ok := request[name]; ok {
			out := maps.Clone(request)
			for _, n := range OrgTagNames {
				delete(out, n)
			}
			return out
		}
	}
	return request
}

// RequestTags returns the key's tags overlaid by a request's own tags,
// except the organisation tags, which stay the key's (or absent, when
// the key has none): no header or request field can move a request's
// spend to another team or project.
func (k *Key) RequestTags(request map[string]string) map[string]string {
	return Merge(k.Tags, FreeTags(request))
}

// checkOrg checks that team (and project, in it) exist.
func (s *Store) checkOrg(ctx context.Context, team, project string) error {
	if team == "" {
		if project != "" {
			return orgErr(ErrInvalid, "a project needs its team")
		}
		return nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM teams WHERE name = ?`, team).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return orgErr(ErrMissing, "team %q does not exist (create it first)", team)
	}
	if project == "" {
		return nil
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE team = ? AND name = ?`, team, project).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return orgErr(ErrMissing, "project %q of team %q does not exist (create it first)", project, team)
	}
	return nil
}

// CreateTeam makes a team.
func (s *Store) CreateTeam(ctx context.Context, name, description string) (*Team, error) {
	if !tagName(name) || len(name) > 64 {
		return nil, orgErr(ErrInvalid, "team name %q: use 1-64 letters, digits, '_', '-' or '.'", name)
	}
	t := &Team{Name: name, Description: description, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM teams WHERE name = ?`, name).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, orgErr(ErrExists, "team %q already exists", name)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO teams(name, description, created_at) VALUES (?,?,?)`,
		t.Name, t.Description, t.CreatedAt.UnixMilli()); err != nil {
		return nil, err
	}
	return t, nil
}

// Teams lists the teams, oldest first.
func (s *Store) Teams(ctx context.Context) ([]*Team, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, description, created_at FROM teams ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Team{}
	for rows.Next() {
		var t Team
		var created int64
		if err := rows.Scan(&t.Name, &t.Description, &created); err != nil {
			return nil, err
		}
		t.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, &t)
	}
	return out, rows.Err()
}

// DeleteTeam deletes a team that has no projects and no live keys.
func (s *Store) DeleteTeam(ctx context.Context, name string) error {
	if err := s.checkOrg(ctx, name, ""); err != nil {
		return err
	}
	var projects int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE team = ?`, name).Scan(&projects); err != nil {
		return err
	}
	if projects > 0 {
		return orgErr(ErrInUse, "team %q still has %d projects; delete them first", name, projects)
	}
	if n := s.liveKeys(name, ""); n > 0 {
		return orgErr(ErrInUse, "%d live keys belong to team %q; revoke them first", n, name)
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM teams WHERE name = ?`, name)
	return err
}

// CreateProject makes a project in a team.
func (s *Store) CreateProject(ctx context.Context, team, name, description string) (*Project, error) {
	if err := s.checkOrg(ctx, team, ""); err != nil {
		return nil, err
	}
	if !tagName(name) || len(name) > 64 {
		return nil, orgErr(ErrInvalid, "project name %q: use 1-64 letters, digits, '_', '-' or '.'", name)
	}
	if err := s.checkOrg(ctx, team, name); err == nil {
		return nil, orgErr(ErrExists, "project %q of team %q already exists", name, team)
	}
	p := &Project{Team: team, Name: name, Description: description, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO projects(team, name, description, created_at) VALUES (?,?,?,?)`,
		p.Team, p.Name, p.Description, p.CreatedAt.UnixMilli()); err != nil {
		return nil, err
	}
	return p, nil
}

// Projects lists a team's projects, oldest first.
func (s *Store) Projects(ctx context.Context, team string) ([]*Project, error) {
	if err := s.checkOrg(ctx, team, ""); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT team, name, description, created_at FROM projects WHERE team = ? ORDER BY created_at, name`, team)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Project{}
	for rows.Next() {
		var p Project
		var created int64
		if err := rows.Scan(&p.Team, &p.Name, &p.Description, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, &p)
	}
	return out, rows.Err()
}

// DeleteProject deletes a project no live key belongs to.
func (s *Store) DeleteProject(ctx context.Context, team, name string) error {
	if err := s.checkOrg(ctx, team, name); err != nil {
		return err
	}
	if n := s.liveKeys(team, name); n > 0 {
		return orgErr(ErrInUse, "%d live keys belong to project %q; revoke them first", n, name)
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM projects WHERE team = ? AND name = ?`, team, name)
	return err
}

// liveKeys counts the live keys of a team (and project, when given).
func (s *Store) liveKeys(team, project string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, k := range s.byID {
		if k.Team == team && (project == "" || k.Project == project) {
			n++
		}
	}
	return n
}

// SetLimits sets a live key's own rate limits (0 leaves a dimension to
// the configured limits) and returns the key as it was and as it is. The
// change takes effect for the key's next request.
func (s *Store) SetLimits(ctx context.Context, id string, rpm, tpm int64) (before, after *Key, err error) {
	if rpm < 0 || tpm < 0 {
		return nil, nil, orgErr(ErrInvalid, "rpm and tpm must not be negative")
	}
	s.mu.RLock()
	old, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return nil, nil, ErrNotFound
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE keys SET rpm = ?, tpm = ? WHERE id = ?`, rpm, tpm, id); err != nil {
		return nil, nil, err
	}
	// Requests in flight hold the old record: replace it, never change it.
	k := *old
	k.RPM, k.TPM = rpm, tpm
	s.mu.Lock()
	if cur, ok := s.byID[id]; ok && cur == old {
		s.byID[id] = &k
		s.live[k.hash] = &k
	}
	s.mu.Unlock()
	return old, &k, nil
}
