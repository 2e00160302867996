package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/runtime/pgcatalog"
	"github.com/gatehouse/gatehouse/runtime/proxy"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/sqlclass"
)

// catalogResolver resolves the names of PostgreSQL statements with each
// resource's own catalog (runtime/pgcatalog), through a small pool of its
// own per resource, logged in with the resource's credential.
type catalogResolver struct {
	s *Server

	mu   sync.Mutex
	cats map[string]*resourceCatalog // by resource name
}

type resourceCatalog struct {
	pool *pgxpool.Pool
	cat  *pgcatalog.Catalog
}

var _ pg.Resolver = (*catalogResolver)(nil)

func newCatalogResolver(s *Server) *catalogResolver {
	r := &catalogResolver{s: s, cats: map[string]*resourceCatalog{}}
	s.closers = append(s.closers, r.close)
	return r
}

func (r *catalogResolver) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cats {
		c.pool.Close()
	}
	r.cats = map[string]*resourceCatalog{}
	return nil
}

func (r *catalogResolver) catalog(ctx context.Context, resource string) (*pgcatalog.Catalog, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cats[resource]; ok {
		return c.cat, nil
	}
	pool, err := r.s.catalogPool(ctx, resource, "gatehouse-names", pgcatalog.ConfigurePool)
	if err != nil {
		return nil, err
	}
	cat, err := pgcatalog.New(pgcatalog.Config{Querier: pool, Clock: r.s.clock,
		RefreshInterval: r.s.cfg.Postgres.CatalogRefresh, Logger: r.s.log.With("component", "pgcatalog", "resource", resource)})
	if err != nil {
		pool.Close()
		return nil, err
	}
	r.cats[resource] = &resourceCatalog{pool: pool, cat: cat}
	return cat, nil
}

// Resolve implements pg.Resolver.
func (r *catalogResolver) Resolve(ctx context.Context, sess *proxy.Session, st *sqlclass.Statement, searchPath []string) (*proxy.Resolution, error) {
	tables := make([]string, 0, len(st.TablesRead)+len(st.TablesWritten))
	tables = append(tables, st.TablesRead...)
	tables = append(tables, st.TablesWritten...)
	req := pgcatalog.Request{Functions: st.Functions, Operators: st.Operators, Types: st.Types, Tables: tables, SearchPath: searchPath}
	if len(req.Functions)+len(req.Operators)+len(req.Types)+len(req.Tables) == 0 {
		return nil, nil
	}
	if searchPath == nil {
		// The session changed its search path since the gateway learned it:
		// only qualified relation names can be resolved exactly.
		for _, t := range tables {
			if !strings.Contains(t, ".") {
				return nil, &proxy.DeniedError{Code: proxy.CodeInsufficientPrivilege, Err: proxy.ErrDenied,
					Message: fmt.Sprintf("gatehouse denied the command: relation %q is not schema-qualified and this session changed its search_path, so the gateway cannot tell which relation it names", t),
					Hint:    "Qualify relation names (schema.table) after changing search_path."}
			}
		}
	}
	cat, err := r.catalog(ctx, sess.Resource().Name)
	if err != nil {
		return nil, err
	}
	res, err := cat.Judge(ctx, &req)
	if err != nil {
		return nil, err
	}
	// Functions and operators the catalog does not hold are either
	// created in the session's uncommitted transaction (invisible to the
	// gateway's own connection) or do not exist (the backend refuses them):
	// they need a grant by name like any function defined in the database,
	// and make the outputs opaque.
	grant := res.NeedGrant
	if len(res.Unknown) > 0 {
		grant = append(append([]string(nil), grant...), res.Unknown...)
	}
	out := &proxy.Resolution{GrantFunctions: grant, Opaque: res.Opaque}
	if len(tables) > 0 && len(res.Tables) == len(tables) {
		out.Tables = make(map[string]string, len(tables))
		for i, t := range tables {
			out.Tables[t] = res.Tables[i]
		}
	}
	return out, nil
}

// Invalidate implements pg.Resolver: the resource's catalog reloads before
// the next judgment (after DDL the gateway forwarded).
func (r *catalogResolver) Invalidate(resource string) {
	r.mu.Lock()
	c := r.cats[resource]
	r.mu.Unlock()
	if c != nil {
		c.cat.Invalidate()
	}
}

// catalogPool opens a small pool to a PostgreSQL resource with its own
// credential, for the gateway's own catalog queries; configure, when set,
// adjusts the pool configuration.
func (s *Server) catalogPool(ctx context.Context, resource, appName string, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	bc, err := s.postgresBackend(ctx, resource)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(bc.Address)
	if err != nil {
		return nil, fmt.Errorf("resource %s: address %q: %w", resource, bc.Address, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("resource %s: address %q: bad port", resource, bc.Address)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.User, cfg.ConnConfig.Password, cfg.ConnConfig.Database = bc.User, bc.Password, bc.Database
	cfg.ConnConfig.TLSConfig = bc.TLS
	cfg.ConnConfig.RuntimeParams["application_name"] = appName
	cfg.MaxConns = 2
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		// The error may carry connection details; keep only the address.
		return nil, errors.New("catalog connection to " + bc.Address + " failed")
	}
	return pool, nil
}
