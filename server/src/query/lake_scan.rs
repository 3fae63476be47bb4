//! `LakeScan`: a lake table's Delta provider, reading Parquet without a row filter, and
//! only the hours the table's retention keeps (see `retention`).
//!
//! delta-rs hands a query's filters to DataFusion's Parquet reader twice over: as a pruning
//! predicate (skip files, row groups and pages by their statistics) and as a row filter
//! ("late materialization": decode the filter columns first, then the other columns only
//! at the matching rows). On event data the row filter costs more than it saves: a filter
//! such as `event = 'page_view'` keeps rows scattered over every page, so each projected
//! column is still decoded almost whole, now through a selection (top pages on a bulk-loaded
//! lake: 20–25% slower with it). DuckDB reads this way too. Pruning stays; the filter itself
//! runs right above the scan, because delta-rs reports every Parquet filter as inexact.
//!
//! The change is made on the plan the provider returns, before any physical optimizer rule
//! runs: DataFusion's filter pushdown must see the row filter off, or it would hand a
//! `FilterExec`'s predicate to the scan and drop the `FilterExec`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Constraints, Result as DfResult, Statistics};
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::retention::QueryRetention;

#[derive(Debug)]
pub struct LakeScan {
    inner: Arc<dyn TableProvider>,
    retention: ScanRetention,
}

/// Whose table a scan reads, to find its retention when the scan is planned.
#[derive(Debug)]
pub struct ScanRetention {
    pub retention: QueryRetention,
    pub tenant: String,
    pub dataset: String,
}

impl LakeScan {
    pub fn new(inner: Arc<dyn TableProvider>, retention: ScanRetention) -> Arc<Self> {
        Arc::new(Self { inner, retention })
    }

    /// The query's filters and the retention's, judged now (a plan kept for its ticket is
    /// planned into a scan when it runs).
    fn with_retention(&self, filters: &[Expr]) -> Vec<Expr> {
        let mut all = filters.to_vec();
        let r = &self.retention;
        all.extend(r.retention.filter(&r.tenant, &r.dataset));
        all
    }
}

#[tonic::async_trait]
impl TableProvider for LakeScan {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filters = self.with_retention(filters);
        let plan = self.inner.scan(state, projection, &filters, limit).await?;
        without_row_filter(plan)
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> DfResult<ScanResult> {
        let filters = self.with_retention(args.filters().unwrap_or_default());
        let args = ScanArgs::default()
            .with_projection(args.projection())
            .with_filters(Some(&filters))
            .with_limit(args.limit())
            .with_statistics_requests(args.statistics_requests());
        let scanned = self.inner.scan_with_args(state, args).await?;
        Ok(without_row_filter(scanned.into_inner())?.into())
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}

/// `plan` with every Parquet scan's row filter turned off; its pruning predicate is kept.
pub fn without_row_filter(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        if !parquet.table_parquet_options().global.pushdown_filters {
            return Ok(Transformed::no(node));
        }
        let source = parquet.clone().with_pushdown_filters(false);
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        let exec = exec.clone().with_data_source(Arc::new(config));
        Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
    })
    .map(|transformed| transformed.data)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::physical_plan::FileSource;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{col, lit, BinaryExpr};
    use datafusion::physical_plan::filter::FilterExec;
    use datafusion::physical_plan::PhysicalExpr;

    use super::*;

    fn event_is_page_view(schema: &SchemaRef) -> Arc<dyn PhysicalExpr> {
        let event = col("event", schema).unwrap();
        Arc::new(BinaryExpr::new(event, Operator::Eq, lit("page_view")))
    }

    /// A filter over a Parquet scan as delta-rs plans one: predicate set, row filter on.
    fn filtered_scan(row_filter: bool) -> Arc<dyn ExecutionPlan> {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("event", DataType::Utf8, true)]));
        let source = ParquetSource::new(schema.clone())
            .with_predicate(event_is_page_view(&schema))
            .with_pushdown_filters(row_filter);
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .build();
        let scan = DataSourceExec::from_data_source(config);
        Arc::new(FilterExec::try_new(event_is_page_view(&schema), scan).unwrap())
    }

    fn parquet_under(plan: &Arc<dyn ExecutionPlan>) -> ParquetSource {
        let scan = plan.children()[0].downcast_ref::<DataSourceExec>().unwrap();
        scan.downcast_to_file_source::<ParquetSource>()
            .unwrap()
            .1
            .clone()
    }

    fn row_filter_of(source: &ParquetSource) -> bool {
        source.table_parquet_options().global.pushdown_filters
    }

    #[test]
    fn turns_the_row_filter_off_and_keeps_the_pruning_predicate_and_the_filter() {
        let before = filtered_scan(true);
        let predicate = parquet_under(&before).filter().map(|p| p.to_string());
        assert!(row_filter_of(&parquet_under(&before)));

        let after = without_row_filter(before).unwrap();
        assert!(
            after.downcast_ref::<FilterExec>().is_some(),
            "the filter stays"
        );
        let source = parquet_under(&after);
        assert!(!row_filter_of(&source));
        assert!(predicate.is_some());
        assert_eq!(source.filter().map(|p| p.to_string()), predicate);
    }

    #[test]
    fn leaves_a_scan_without_row_filter_as_it_is() {
        let before = filtered_scan(false);
        let after = without_row_filter(before.clone()).unwrap();
        assert!(Arc::ptr_eq(&before, &after));
    }
}
