// The code pane: the learner's service folder as a tree, Monaco on the open file, and the
// compiler's diagnostics as inline markers.
//
// Every change is kept as a draft on the lab (PUT .../drafts/<path>, half a second after the
// last keystroke), so unsaved edits survive a page reload and a restart of the lab. Files
// stay open (one Monaco model each) until the scenario changes; saving writes every changed
// file (atomically) and drops their drafts; the caller then restarts the service once.

import * as monaco from 'monaco-editor/editor/editor.main';
import EditorWorker from 'monaco-editor/editor/editor.worker?worker';
import { ApiError, del, get, putText, type EditorFile, type FileNode, type FileTree } from './api';

// Monaco's language services run in a worker, bundled locally by Vite (no CDN).
(self as any).MonacoEnvironment = { getWorker: () => new EditorWorker() };

const LANGUAGES: Record<string, string> = { rs: 'rust', sql: 'sql', toml: 'ini', md: 'markdown', json: 'json', sh: 'shell' };
const DRAFT_DELAY_MS = 500;

export function languageOf(path: string): string {
  return LANGUAGES[path.split('.').pop() ?? ''] ?? 'plaintext';
}

/** An opened file: its Monaco model and its text on disk (to tell dirty from clean). */
interface Opened { model: monaco.editor.ITextModel; saved: string; draftTimer?: number }

export class CodeEditor {
  readonly editor: monaco.editor.IStandaloneCodeEditor;
  private scenario = '';
  private path: string | null = null;
  private opened = new Map<string, Opened>();
  private paths: string[] = [];
  private lastDiagnostics: string | null = null;

  constructor(
    private tree: HTMLElement,
    host: HTMLElement,
    private pathLabel: HTMLElement,
    private stateLabel: HTMLElement,
    private onDirty: (dirty: boolean) => void,
  ) {
    this.editor = monaco.editor.create(host, { automaticLayout: true, minimap: { enabled: false }, fontSize: 13, scrollBeyondLastLine: false });
    this.editor.onDidChangeModelContent(() => this.changed());
  }

  get openPath() {
    return this.path;
  }

  /** Whether any opened file has changes not saved. */
  get dirty() {
    return this.dirtyPaths().length > 0;
  }

  dirtyPaths() {
    return [...this.opened].filter(([, o]) => o.model.getValue() !== o.saved).map(([p]) => p);
  }

  async load(scenario: string) {
    await this.flushDrafts();
    this.scenario = scenario;
    this.path = null;
    this.editor.setModel(null);
    this.opened.forEach((o) => o.model.dispose());
    this.opened.clear();
    this.pathLabel.textContent = 'no file open';
    const tree = await get<FileTree>(`/scenarios/${scenario}/files`);
    this.paths = [];
    this.tree.replaceChildren(this.renderNodes(tree.entries));
    const where = document.createElement('p');
    where.className = 'note';
    where.textContent = `On disk: ${tree.root}`;
    this.tree.append(where);
    this.onDirty(false);
  }

  private renderNodes(nodes: FileNode[]): HTMLElement {
    const list = document.createElement('ul');
    for (const node of nodes) {
      const item = document.createElement('li');
      if (node.kind === 'dir') {
        const name = document.createElement('span');
        name.className = 'dir';
        name.textContent = `${node.name}/`;
        item.append(name, this.renderNodes(node.children ?? []));
      } else {
        this.paths.push(node.path);
        const link = document.createElement('a');
        link.href = '#';
        link.textContent = node.name;
        link.dataset.path = node.path;
        link.addEventListener('click', (e) => {
          e.preventDefault();
          void this.open(node.path);
        });
        item.append(link);
      }
      list.append(item);
    }
    return list;
  }

  /** Opens `path` (a new file when it does not exist yet), with the draft the lab kept. */
  async open(path: string, create = false) {
    let opened = this.opened.get(path);
    if (!opened) {
      let file: EditorFile;
      try {
        file = await get<EditorFile>(`/scenarios/${this.scenario}/files/${path}`);
      } catch (e) {
        if (!(create && e instanceof ApiError && e.status === 404)) throw e;
        file = { path, content: '', draft: null };
      }
      const uri = monaco.Uri.parse(`file:///${this.scenario}/${path}`);
      monaco.editor.getModel(uri)?.dispose();
      const model = monaco.editor.createModel(file.draft ?? file.content, languageOf(path), uri);
      opened = { model, saved: file.content };
      this.opened.set(path, opened);
    }
    this.path = path;
    this.editor.setModel(opened.model);
    this.pathLabel.textContent = path;
    this.tree.querySelectorAll('a').forEach((a) => a.classList.toggle('open', a.dataset.path === path));
    this.changed(false);
    if (this.lastDiagnostics) this.showDiagnostics(this.lastDiagnostics);
  }

  private changed(keepDraft = true) {
    const current = this.path === null ? undefined : this.opened.get(this.path);
    const dirtyHere = !!current && current.model.getValue() !== current.saved;
    const others = this.dirtyPaths().filter((p) => p !== this.path).length;
    this.stateLabel.textContent = [dirtyHere ? 'unsaved changes (kept as a draft)' : '', others ? `${others} other file(s) unsaved` : ''].filter(Boolean).join('; ');
    this.onDirty(this.dirty);
    if (!keepDraft || !current || this.path === null) return;
    const path = this.path;
    window.clearTimeout(current.draftTimer);
    current.draftTimer = window.setTimeout(() => void this.flushDraft(path), DRAFT_DELAY_MS);
  }

  /** Sends `path`'s pending draft now. */
  private async flushDraft(path: string) {
    const o = this.opened.get(path);
    if (!o || o.draftTimer === undefined) return;
    window.clearTimeout(o.draftTimer);
    o.draftTimer = undefined;
    const draftPath = `/scenarios/${this.scenario}/drafts/${path}`;
    if (o.model.getValue() !== o.saved) await putText(draftPath, o.model.getValue());
    else await del(draftPath);
  }

  /** Sends every pending draft now (before a reload or a scenario switch). */
  async flushDrafts() {
    await Promise.all([...this.opened.keys()].map((p) => this.flushDraft(p)));
  }

  /** Writes every changed file (the lab drops their drafts); returns the paths written. */
  async save(): Promise<string[]> {
    const written: string[] = [];
    for (const path of this.dirtyPaths()) {
      const o = this.opened.get(path)!;
      window.clearTimeout(o.draftTimer);
      o.draftTimer = undefined;
      const text = o.model.getValue();
      await putText(`/scenarios/${this.scenario}/files/${path}`, text);
      o.saved = text;
      written.push(path);
    }
    if (written.some((p) => !this.paths.includes(p))) await this.refreshTree();
    this.changed(false);
    return written;
  }

  private async refreshTree() {
    const tree = await get<FileTree>(`/scenarios/${this.scenario}/files`);
    this.paths = [];
    const where = this.tree.lastElementChild;
    this.tree.replaceChildren(this.renderNodes(tree.entries));
    if (where) this.tree.append(where);
  }

  /** Drops the open file's unsaved changes. */
  async discard() {
    if (this.path === null) return;
    const o = this.opened.get(this.path)!;
    window.clearTimeout(o.draftTimer);
    o.draftTimer = undefined;
    await del(`/scenarios/${this.scenario}/drafts/${this.path}`);
    o.model.setValue(o.saved);
    this.changed(false);
  }

  /** Puts the compiler's errors and warnings on the open file as markers (none: clears). */
  showDiagnostics(text: string | null) {
    this.lastDiagnostics = text;
    const model = this.editor.getModel();
    if (!model) return;
    const markers: monaco.editor.IMarkerData[] = [];
    for (const d of parseDiagnostics(text ?? '')) {
      if (this.path === null || !(d.file === this.path || d.file.endsWith(`/${this.path}`))) continue;
      const line = Math.min(d.line, model.getLineCount());
      markers.push({
        severity: d.severity === 'error' ? monaco.MarkerSeverity.Error : monaco.MarkerSeverity.Warning,
        message: d.message,
        startLineNumber: line,
        startColumn: d.column,
        endLineNumber: line,
        endColumn: Math.max(d.column + 1, model.getLineMaxColumn(line)),
      });
    }
    monaco.editor.setModelMarkers(model, 'cargo', markers);
    const first = markers.find((m) => m.severity === monaco.MarkerSeverity.Error);
    // After the diagnostics panel has taken its room, so the line lands in the visible part.
    if (first) requestAnimationFrame(() => {
      this.editor.layout();
      this.editor.revealLineInCenter(first.startLineNumber);
    });
  }

  /** The markers on the open file (the browser test reads them). */
  markers() {
    const model = this.editor.getModel();
    return model ? monaco.editor.getModelMarkers({ resource: model.uri }) : [];
  }

  /** The file (of the tree) the first error names, to open it. */
  firstErrorFile(text: string): string | null {
    for (const d of parseDiagnostics(text)) {
      const hit = this.paths.find((p) => d.file === p || d.file.endsWith(`/${p}`));
      if (d.severity === 'error' && hit) return hit;
    }
    return null;
  }
}

export interface Diagnostic { severity: 'error' | 'warning'; message: string; file: string; line: number; column: number }

/** rustc's human output: `error[E0425]: message` then ` --> path:line:col`. */
export function parseDiagnostics(text: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  let current: { severity: 'error' | 'warning'; message: string } | null = null;
  for (const line of text.split('\n')) {
    const head = /^(error|warning)(\[\w+\])?: (.*)$/.exec(line);
    if (head) {
      current = { severity: head[1] as 'error' | 'warning', message: `${head[1]}${head[2] ?? ''}: ${head[3]}` };
      continue;
    }
    const at = /^\s*--> (.+):(\d+):(\d+)$/.exec(line);
    if (at && current) {
      out.push({ ...current, file: at[1], line: Number(at[2]), column: Number(at[3]) });
      current = null;
    }
  }
  return out;
}

/** A side-by-side diff: the learner's file (left) against the solution's (right). */
export class SolutionDiff {
  private diff: monaco.editor.IStandaloneDiffEditor;

  constructor(host: HTMLElement) {
    this.diff = monaco.editor.createDiffEditor(host, { automaticLayout: true, readOnly: true, renderSideBySide: true, minimap: { enabled: false } });
  }

  show(path: string, mine: string, theirs: string) {
    const language = languageOf(path);
    this.diff.setModel({
      original: monaco.editor.createModel(mine, language),
      modified: monaco.editor.createModel(theirs, language),
    });
  }
}
