/* rootfs-tar: a gvlt backend plugin in C, loaded in-process (kind "dylib"). It writes the image's
 * root tree as a plain tar: the host's own root_tar, copied into the plugin's output directory.
 * gvlt calls the two entry points through libffi, as declared in plugins.json:
 *   "symbols": {"call": "char *rootfs_tar_call(const char *)", "free": "void rootfs_tar_free(char *)"}
 * Build: cc -shared -fPIC -O2 -o librootfs_tar.so rootfs_tar.c
 * The request and the answer are gvlt-plugin/1.0 JSON (docs/plugins.md). This example reads only
 * the few string fields it needs, with a small scanner instead of a JSON library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The string value of "key" in a flat JSON text, unescaped (\" \\ \/), or NULL. */
static char *field(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = strstr(json, pattern);
    if (!start) return NULL;
    start += strlen(pattern);
    char *value = malloc(strlen(start) + 1), *out = value;
    for (const char *p = start; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        *out++ = *p;
    }
    *out = 0;
    return value;
}

static char *answer(const char *text) { return strdup(text); }

static char *error(const char *message) {
    char *text = malloc(strlen(message) + 64);
    sprintf(text, "{\"type\":\"error\",\"message\":\"%s\"}\n", message);
    return text;
}

char *rootfs_tar_call(const char *request) {
    if (strstr(request, "\"method\":\"describe\""))
        return answer("{\"type\":\"result\",\"result\":{\"name\":\"rootfs-tar\",\"version\":\"1.0.0\","
                      "\"protocol\":\"gvlt-plugin/1.0\",\"role\":\"backend\","
                      "\"description\":\"the root tree as a plain tar (in-process C plugin)\","
                      "\"capabilities\":{\"inputs\":[\"rootfs-tree\"],\"outputs\":[\"tar\"],\"reproducible\":true},"
                      "\"components\":[]}}\n");
    if (!strstr(request, "\"method\":\"build\"")) return error("unknown method");
    char *root = field(request, "root_tar"), *dir = field(request, "output_dir"), *name = field(request, "output_name");
    if (!root || !dir || !name) return error("the build request lacks root_tar, output_dir or output_name");
    char *output = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(output, "%s/%s", dir, name);
    FILE *in = fopen(root, "rb"), *out = fopen(output, "wb");
    if (!in || !out) return error("cannot open the root tar or the output");
    char buffer[1 << 16];
    size_t n, total = 0;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) { fwrite(buffer, 1, n, out); total += n; }
    fclose(in);
    if (fclose(out) != 0) return error("cannot write the output");
    char *text = malloc(strlen(output) * 2 + 256);
    sprintf(text, "{\"type\":\"progress\",\"message\":\"copied %zu bytes\"}\n"
                  "{\"type\":\"result\",\"result\":{\"artifacts\":[{\"path\":\"%s\",\"size\":%zu}]}}\n", total, output, total);
    free(root); free(dir); free(name); free(output);
    return text;
}

void rootfs_tar_free(char *text) { free(text); }
