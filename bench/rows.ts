/** The rows of the table and of the JSON, and how a row's goal is judged. */
import * as H from "./harness.js"

/** How a row's goal is judged: on the ratio SDK / baseline, on the SDK value alone, or not at all. */
export type Goal =
  | { readonly kind: "ratioAtMost"; readonly value: number }
  | { readonly kind: "ratioAtLeast"; readonly value: number }
  | { readonly kind: "valueAtMost"; readonly value: number }
  | { readonly kind: "growthAtMost"; readonly value: number }
  | { readonly kind: "report" }

/** One line of the table and of the JSON. */
export interface Row {
  readonly key: string
  readonly figure: string
  readonly unit: string
  readonly sdk: number
  readonly baseline: number
  /** SDK / baseline; null when the baseline is 0. */
  readonly ratio: number | null
  readonly goal: string
  /** null: report only. */
  readonly pass: boolean | null
  readonly detail?: string | undefined
  readonly error?: string | undefined
}

const goalText = (goal: Goal, unit: string): string => {
  switch (goal.kind) {
    case "ratioAtMost":
      return `≤ ${goal.value}×`
    case "ratioAtLeast":
      return `≥ ${goal.value}×`
    case "valueAtMost":
      return `≤ ${goal.value} ${unit}`
    case "growthAtMost":
      return `≤ +${goal.value} ${unit}`
    case "report":
      return "report"
  }
}

export const row = (
  key: string,
  figure: string,
  unit: string,
  sdk: number,
  baseline: number,
  goal: Goal,
  options: { readonly detail?: string; readonly extraPass?: boolean } = {}
): Row => {
  const ratio = baseline === 0 ? null : sdk / baseline
  const judged = goal.kind === "report"
    ? null
    : goal.kind === "valueAtMost"
    ? sdk <= goal.value
    : goal.kind === "growthAtMost"
    ? sdk - baseline <= goal.value
    : ratio !== null && (goal.kind === "ratioAtMost" ? ratio <= goal.value : ratio >= goal.value)
  return {
    key,
    figure,
    unit,
    sdk,
    baseline,
    ratio,
    goal: goalText(goal, unit),
    pass: judged === null ? null : judged && (options.extraPass ?? true),
    detail: options.detail
  }
}

/** Allowed growth of settled memory across a load figure. */
const memoryToleranceMiB = 32

/** Rows `<key>.heap`, `<key>.rss`, `<key>.server`: settled memory after (SDK column) vs before (baseline column). */
export const memoryRows = (
  key: string,
  load: string,
  before: H.MemorySnapshot,
  after: H.MemorySnapshot,
  between: string
): Array<Row> => {
  const goal: Goal = { kind: "growthAtMost", value: memoryToleranceMiB }
  const detail =
    `after vs before ${between}; forced GC in both processes + 1 s settle; growth ${memoryToleranceMiB} MiB at most`
  return [
    row(
      `${key}.heap`,
      `${load}: SDK heap back to baseline`,
      "MiB",
      H.mib(after.heapUsed),
      H.mib(before.heapUsed),
      goal,
      { detail }
    ),
    row(`${key}.rss`, `${load}: SDK RSS back to baseline`, "MiB", H.mib(after.rss), H.mib(before.rss), goal, {
      detail
    }),
    row(
      `${key}.server`,
      `${load}: executor RSS back to baseline`,
      "MiB",
      H.mib(after.childRss),
      H.mib(before.childRss),
      goal,
      {
        detail: `${detail}; VmRSS of the executor child`
      }
    )
  ]
}
