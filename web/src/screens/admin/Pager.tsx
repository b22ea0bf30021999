/** ← 1–50 of 4,020 → : page through a list the server counts. Hidden while everything fits on one page. */
export function Pager(props: { page: number; pageSize: number; total: number; onPage: (page: number) => void }) {
  const { page, pageSize, total } = props;
  if (total <= pageSize && page === 0) return null;
  return (
    <div className="row gap">
      <button type="button" className="btn btn-small" disabled={page === 0} onClick={() => props.onPage(page - 1)}>
        ←
      </button>
      <span className="muted small">
        {total === 0 ? 0 : page * pageSize + 1}–{Math.min(total, (page + 1) * pageSize)} of {total.toLocaleString()}
      </span>
      <button
        type="button"
        className="btn btn-small"
        disabled={(page + 1) * pageSize >= total}
        onClick={() => props.onPage(page + 1)}
      >
        →
      </button>
    </div>
  );
}
