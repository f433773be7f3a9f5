/**
 * The entry of the executor's V8 startup snapshot (`scripts/bundles.ts` bundles it into
 * `executor-snapshot.cjs`; `executorSnapshot.ts` builds the blob with `node --build-snapshot`).
 * Building it evaluates every module of the executor and nothing else: no socket, no environment,
 * no arguments. `node --snapshot-blob <blob> executor …` then runs the deserialize main function,
 * which starts the executor as the bin does (`process.argv` has no script there).
 *
 * @internal
 */
import * as V8 from "node:v8"
import { runExecutorMain } from "./cliExecutor.js"

V8.startupSnapshot.setDeserializeMainFunction(() => runExecutorMain(process.argv.slice(1)))
