//! What SQL may reach DataFusion's planner: one SELECT of bounded size, depth and breadth.
//!
//! The parser builds a long `a OR b OR …` chain without recursing, but the planner and the
//! optimizer walk the tree recursively: a few hundred levels overflow a 2 MiB thread stack.
//! So the parsed statement is measured first (by a visitor that stops at the limit, so it
//! never descends deeper itself), and anything that is not a query (DDL, DML, `COPY`,
//! `EXPLAIN`, `SET`) is refused before the planner sees it.

use std::ops::ControlFlow;

use datafusion_common::error::DataFusionError;
use datafusion_sql::parser::Statement as DFStatement;
use datafusion_sql::sqlparser::ast::{Expr, Query, Statement, Visit, Visitor};
use datafusion_sql::sqlparser::parser::ParserError;

use crate::error::{Error, Result};

/// The longest query text accepted, in bytes; beyond it parsing alone takes noticeable time.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// How deeply expressions and subqueries may nest: well inside what planning a query needs
/// of a 2 MiB stack in a debug build (about 150 levels).
pub const MAX_DEPTH: usize = 64;
/// The parser's own nesting limit (DataFusion's default `recursion_limit`).
const PARSER_DEPTH: usize = 50;
/// How many function calls (aggregates included) a query may make: planning time grows
/// faster than linearly with them (2,000 aggregates take half a minute).
pub const MAX_FUNCTIONS: usize = 256;

/// Refuses a text longer than [`MAX_SQL_BYTES`], before it is parsed.
pub fn check_length(sql: &str) -> Result<()> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::Query(format!(
            "the query is {} bytes long; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    Ok(())
}

/// A parse error as the user should read it: the parser's own recursion limit (nested
/// parentheses, function arguments, subqueries) said in words.
pub fn parse_error(error: DataFusionError) -> Error {
    match error {
        DataFusionError::SQL(e, _) if matches!(*e, ParserError::RecursionLimitExceeded) => {
            Error::Query(format!(
                "parentheses, function calls and subqueries nest more than {PARSER_DEPTH} deep"
            ))
        }
        other => Error::Query(other.strip_backtrace()),
    }
}

/// Refuses a statement that is not a query, or nests or calls more than the limits allow.
pub fn check(statement: &DFStatement) -> Result<()> {
    let query = match statement {
        DFStatement::Statement(inner) => match inner.as_ref() {
            Statement::Query(query) => query,
            other => return Err(not_a_query(statement_kind(other))),
        },
        DFStatement::CopyTo(_) => return Err(not_a_query("COPY")),
        DFStatement::CreateExternalTable(_) => return Err(not_a_query("CREATE EXTERNAL TABLE")),
        DFStatement::Explain(_) => return Err(not_a_query("EXPLAIN")),
        DFStatement::Reset(_) => return Err(not_a_query("RESET")),
    };
    let mut measure = Measure::default();
    match query.visit(&mut measure) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(limit) => Err(Error::Query(limit)),
    }
}

fn not_a_query(kind: &str) -> Error {
    Error::Query(format!("only SELECT queries can run as jobs, not {kind}"))
}

/// The statement's keyword, as a user wrote it (`INSERT`, `CREATE TABLE`, …).
fn statement_kind(statement: &Statement) -> &'static str {
    match statement {
        Statement::Insert(_) => "INSERT",
        Statement::Update { .. } => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Copy { .. } => "COPY",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateView { .. } => "CREATE VIEW",
        Statement::Drop { .. } => "DROP",
        Statement::Explain { .. } => "EXPLAIN",
        _ => "a statement that is not a query",
    }
}

/// The current nesting and the function calls seen so far.
#[derive(Default)]
struct Measure {
    depth: usize,
    functions: usize,
}

impl Measure {
    fn enter(&mut self) -> ControlFlow<String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return ControlFlow::Break(format!(
                "expressions and subqueries nest more than {MAX_DEPTH} deep (write a long \
                 OR or AND chain as IN (…), or split the query)"
            ));
        }
        ControlFlow::Continue(())
    }

    fn leave(&mut self) -> ControlFlow<String> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Measure {
    type Break = String;

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        self.enter()
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<String> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        if matches!(expr, Expr::Function(_)) {
            self.functions += 1;
            if self.functions > MAX_FUNCTIONS {
                return ControlFlow::Break(format!(
                    "the query calls more than {MAX_FUNCTIONS} functions (aggregates included)"
                ));
            }
        }
        self.enter()
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<String> {
        self.leave()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> DFStatement {
        let dialect = datafusion_sql::sqlparser::dialect::GenericDialect {};
        datafusion_sql::parser::DFParser::parse_sql_with_dialect(sql, &dialect)
            .unwrap()
            .pop_front()
            .unwrap()
    }

    fn refusal(sql: &str) -> String {
        check(&parsed(sql)).unwrap_err().to_string()
    }

    #[test]
    fn queries_within_the_limits_pass() {
        let chain = vec!["a = 1"; MAX_DEPTH / 2].join(" OR ");
        let calls = vec!["SUM(a)"; MAX_FUNCTIONS].join(", ");
        for sql in [
            format!("SELECT COUNT(*) FROM t WHERE {chain}"),
            format!("SELECT {calls} FROM t"),
        ] {
            check(&parsed(&sql)).unwrap();
        }
    }

    #[test]
    fn deep_broad_and_non_query_statements_are_refused_by_name() {
        let chain = vec!["a = 1"; 5_000].join(" OR ");
        assert!(refusal(&format!("SELECT COUNT(*) FROM t WHERE {chain}")).contains("nest more"));
        let calls = vec!["SUM(a)"; 2_000].join(", ");
        assert!(refusal(&format!("SELECT {calls} FROM t")).contains("more than 256 functions"));
        for (sql, kind) in [
            ("COPY t TO '/tmp/eddy-copy.csv'", "not COPY"),
            (
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
                "EXTERNAL",
            ),
            ("CREATE TABLE x AS SELECT 1", "not CREATE TABLE"),
            ("INSERT INTO t VALUES (1)", "not INSERT"),
            ("DROP TABLE t", "not DROP"),
            ("EXPLAIN SELECT 1", "not EXPLAIN"),
        ] {
            assert!(refusal(sql).contains(kind), "{sql}: {}", refusal(sql));
        }
        let long = format!(
            "SELECT COUNT(*) FROM t WHERE a IN ({})",
            "1, ".repeat(30_000)
        );
        assert!(
            check_length(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 65536")
        );
    }
}
