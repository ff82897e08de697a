/**
 * A TypeDoc plugin linking every symbol of the `effect` package to its module's page in Effect 4's API reference
 * (the reference that effect's own README names), rather than one fixed page for all of them.
 */
import type { Application } from "typedoc"

const effectReference = "https://effect.website/docs/v4/api/effect"

/** `dist/Schema.d.ts` or `src/Schema.ts` → `Schema`; `dist/unstable/cli/Command.d.ts` → `unstable/cli/Command`. */
const effectModule = (packagePath: string): string | undefined => {
  const module = /^(?:dist|src)\/(.+?)(?:\.d)?\.ts$/.exec(packagePath)?.[1]
  return module === undefined || module === "index" || module.split("/").includes("internal") ? undefined : module
}

export const load = (app: Application) => {
  app.converter.addUnknownSymbolResolver((_reference, _reflection, _part, symbolId) => {
    if (symbolId?.packageName !== "effect") return undefined
    const module = effectModule(symbolId.packagePath)
    return module === undefined ? effectReference : `${effectReference}/${module}`
  })
}
