/**
 * Host-side process inspection for tests (Linux /proc): what a sandbox left running.
 */
import * as Fs from "node:fs"

/** The text of `/proc/<pid>/<file>`, or "" when the process is gone or the file unreadable. */
export const readProc = (pid: string, file: string): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/${file}`, "utf8")
  } catch {
    return ""
  }
}

/** Whether `pid` is alive; a zombie is dead for our purposes. */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  return !/^\d+ \(.*\) Z /s.test(readProc(String(pid), "stat"))
}

/** Live host pids whose command line or cwd mentions `text`, and all their descendants (this process excluded). */
export const processesOf = (text: string): Array<number> => {
  const parents = new Map<number, number>()
  const roots: Array<number> = []
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readProc(entry, "stat")
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]))
    let cwd = ""
    try {
      cwd = Fs.readlinkSync(`/proc/${entry}/cwd`)
    } catch {
      // gone or not ours
    }
    if (readProc(entry, "cmdline").replace(/\0/g, " ").includes(text) || cwd.startsWith(text)) roots.push(Number(entry))
  }
  const found = new Set(roots)
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, ppid] of parents) {
      if (!found.has(pid) && found.has(ppid)) {
        found.add(pid)
        grew = true
      }
    }
  }
  return [...found].filter((pid) => pid !== process.pid && alive(pid))
}

/** The descriptors of `pid` (`"self"`: this process) and the paths they are open on; empty once it is gone. */
export const openFiles = (pid: number | "self"): Array<{ readonly fd: string; readonly path: string }> => {
  let fds: Array<string>
  try {
    fds = Fs.readdirSync(`/proc/${pid}/fd`)
  } catch {
    return []
  }
  const out: Array<{ readonly fd: string; readonly path: string }> = []
  for (const fd of fds) {
    try {
      out.push({ fd, path: Fs.readlinkSync(`/proc/${pid}/fd/${fd}`) })
    } catch {
      // closed meanwhile
    }
  }
  return out
}
