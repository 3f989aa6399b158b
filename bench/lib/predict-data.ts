/** The predict benchmarks' data (bench/predict.ts, bench/sql-predict.ts): one table, one recipe. */
export const PREDICT_FEATURES = 20;
export const PREDICT_FEATURE_NAMES = Array.from({ length: PREDICT_FEATURES }, (_, i) => `f${i + 1}`);

/**
 * Creates `public.<table>`: deterministic (setseed) standard-normal features f1..f20 and a label
 * that is a noisy nonlinear function of them.
 */
export function predictDataSql(table: string, rows: number): string {
  const F = PREDICT_FEATURE_NAMES;
  return `
select setseed(0.2024);
create table public.${table} (id int primary key, ${F.map((f) => `${f} float8 not null`).join(', ')}, label int not null);
insert into public.${table}
select id, ${F.map((_, i) => `x[${i + 1}]`).join(', ')},
  case when 2 * sin(x[1]) + x[2] * x[3] + abs(x[4]) - 0.5 * x[6] * x[6] + 0.3 * x[5]
            + (case when x[7] > 0.5 then 1 else -0.5 end) * x[8] + 0.5 * cos(3 * x[9]) + x[21] > 0.4
       then 1 else 0 end
from (select g as id, array(select sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) from generate_series(1, ${PREDICT_FEATURES + 1}) where g > 0) as x
      from generate_series(1, ${rows}) g) s;
analyze public.${table};`;
}
