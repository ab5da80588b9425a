package server

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/platform/metrics"
)

// budgetSpend reads the governor's budgets for the budget gauge at
// scrape time. Wildcard budgets, which count each value apart, have no
// single status and are left out.
func (s *Server) budgetSpend() []metrics.BudgetSpend {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	views, err := s.gov.Budgets(ctx)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "metrics: budgets unreadable", slog.Any("err", err))
		return nil
	}
	out := make([]metrics.BudgetSpend, 0, len(views))
	for _, v := range views {
		if v.Status == nil {
			continue
		}
		spent, err := strconv.ParseFloat(v.Status.SpentUSD, 64)
		if err != nil {
			continue
		}
		out = append(out, metrics.BudgetSpend{Scope: v.Scope, Period: v.Period, SpentUSD: spent, LimitUSD: v.LimitUSD})
	}
	return out
}
