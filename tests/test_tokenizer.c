/* Tokenizer: SAA+ caption normalisation, BERT basic tokenization + WordPiece, sub-sentence masks, and
 * decoding, on a small vocabulary written by this test. Every expectation below was derived by hand
 * from the rules of HF BertTokenizer / GroundingDINO (the golden folder "tokenizer" checks the real
 * bert-base-uncased vocabulary through `saa check-golden`). */
#include <string.h>
#include <unistd.h>

#include "saa/tokenizer.h"
#include "test.h"

/* id = line number */
static const char vocab_text[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n" /* 0-4 */
                                 ".\n?\n,\n'\n"                        /* 5-8 */
                                 "crack\nhole\n##s\ncafe\nun\n##aff\n##able\na\n##a\n" /* 9-17 */
                                 "ste\n##el\n\xe9\x87\x91\n-\n"       /* 18-21: ste ##el 金 - */
                                 "\xcf\x82\n##\xcf\x82\n\xce\xbf\xce\xb4\xce\xbf\n" /* 22-24: ς ##ς οδο */
                                 "i\n##zmir\nt\nn\ndon\nx\n";          /* 25-30 */
enum { PAD, UNK, CLS, SEP, MASK, DOT, QM, COMMA, APOS, CRACK, HOLE, S_, CAFE, UN, AFF_, ABLE_, A, A_, STE, EL_,
       JIN, DASH, FSIGMA, FSIGMA_, ODO, I, ZMIR_, T, N, DON, X };

static saa_tokenizer *tok;

/* Tokenizes a NUL-free string and compares with the expected ids (terminated by -1). */
static int ids_equal(const char *text, size_t len, const int *want)
{
    int32_t *ids;
    int n;
    if (saa_tokenize(tok, text, len, &ids, &n) != SAA_OK) {
        fprintf(stderr, "tokenize failed: %s\n", saa_last_error());
        return 0;
    }
    int m = 0;
    while (want[m] >= 0) m++;
    int ok = n == m;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!ok) {
        fprintf(stderr, "\"%.*s\" ->", (int)len, text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}
#define TOK(text, ...) CHECK(ids_equal(text, sizeof(text) - 1, (const int[]){__VA_ARGS__, -1}))

static int normalizes_to(const char *in, size_t len, const char *want, size_t want_len)
{
    char *out;
    size_t n;
    if (saa_caption_normalize(in, len, &out, &n) != SAA_OK) return 0;
    int ok = n == want_len && !memcmp(out, want, n) && out[n] == 0;
    if (!ok) fprintf(stderr, "normalize(\"%.*s\") = \"%s\", expected \"%s\"\n", (int)len, in, out, want);
    free(out);
    return ok;
}
#define NORM(in, want) CHECK(normalizes_to(in, sizeof(in) - 1, want, sizeof(want) - 1))

static int decodes_to(const int *ids, int n, const char *want)
{
    int32_t v[64];
    for (int i = 0; i < n; i++) v[i] = ids[i];
    char *s = saa_tokenizer_decode(tok, v, n);
    int ok = s && !strcmp(s, want);
    if (!ok) fprintf(stderr, "decode -> \"%s\", expected \"%s\"\n", s ? s : "(null)", want);
    free(s);
    return ok;
}
#define DECODE(want, ...)                                                                                  \
    CHECK(decodes_to((const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)), \
                     want))

static void test_vocab(void)
{
    CHECK(saa_tokenizer_vocab_size(tok) == 31);
    CHECK(saa_tokenizer_id(tok, "crack") == CRACK);
    CHECK(saa_tokenizer_id(tok, "##able") == ABLE_);
    CHECK(saa_tokenizer_id(tok, "cracks") == -1);
    CHECK(!strcmp(saa_tokenizer_token(tok, HOLE), "hole"));
    CHECK(!strcmp(saa_tokenizer_token(tok, 999), "[UNK]"));
    /* a file on disk, CRLF line ends, and a token listed twice (the last line wins, like a Python dict) */
    char path[] = "/tmp/saa_test_vocab_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char crlf[] = "[UNK]\r\n[CLS]\r\n[SEP]\r\ndup\r\ndup\r\nlast";
    CHECK(write(fd, crlf, sizeof crlf - 1) == (ssize_t)(sizeof crlf - 1));
    close(fd);
    saa_tokenizer *t2;
    CHECK(saa_tokenizer_load(path, &t2) == SAA_OK);
    CHECK(saa_tokenizer_vocab_size(t2) == 6);
    CHECK(saa_tokenizer_id(t2, "dup") == 4);
    CHECK(saa_tokenizer_id(t2, "last") == 5);
    CHECK(!strcmp(saa_tokenizer_token(t2, 3), "dup"));
    saa_tokenizer_free(t2);
    unlink(path);
    CHECK(saa_tokenizer_load("/nonexistent/vocab.txt", &t2) != SAA_OK);
    CHECK(saa_tokenizer_load_buffer("a\nb\n", 4, &t2) == SAA_EFORMAT); /* no [UNK]/[CLS]/[SEP] */
}

static void test_normalize(void)
{
    NORM("Crack. Black hole", "crack. black hole.");
    NORM("defect on bottle.", "defect on bottle.");
    NORM("", ".");
    NORM(" \t\n ", ".");
    NORM("crack.\xc2\x85", "crack.");                             /* U+0085 is str.isspace */
    NORM("\xe3\x80\x80\xe2\x80\x83 scratch \xc2\xa0", "scratch."); /* U+3000, U+2003, U+00A0 */
    NORM("a\xe2\x80\xa8", "a.");                                    /* U+2028 (Zl) is stripped */
    NORM("x\x1c", "x.");                                            /* U+001C (Cc, bidi B) too */
    NORM("ok.\xe2\x80\x8b", "ok.\xe2\x80\x8b.");                   /* U+200B (Cf) is NOT whitespace */
    NORM("ok\xef\xbb\xbf", "ok\xef\xbb\xbf.");                     /* nor U+FEFF */
    /* full lower-casing: final sigma, U+0130 -> i + U+0307, sharp s stays, capital sharp s -> sharp s */
    NORM("\xce\x9f\xce\x94\xce\x9f\xce\xa3", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82.");         /* ΟΔΟΣ -> οδος */
    NORM("\xce\xa3\xce\x91", "\xcf\x83\xce\xb1.");                                          /* ΣΑ: not final */
    NORM("\xce\x91\xce\xa3'", "\xce\xb1\xcf\x82'.");     /* final: the apostrophe is case-ignorable */
    NORM("\xce\x91\xce\xa3'\xce\x91", "\xce\xb1\xcf\x83'\xce\xb1."); /* ... but a letter follows it */
    NORM("\xe2\x85\xb0\xce\xa3\xc2\xaa", "\xe2\x85\xb0\xcf\x83\xc2\xaa.");  /* ⅰΣª: ª (Other_Lowercase) is cased */
    NORM("A\xce\xa3\xca\xb0", "a\xcf\x82\xca\xb0.");                    /* ʰ is cased AND case-ignorable */
    NORM("\xca\xb0\xce\xa3", "\xca\xb0\xcf\x83.");
    NORM("A\xce\xa3\xf0\x9f\x84\xb0", "a\xcf\x83\xf0\x9f\x84\xb0.");  /* U+1F130 (Other_Uppercase) */
    NORM("\xc4\xb0Z", "i\xcc\x87z.");
    NORM("\xe1\xba\x9e", "\xc3\x9f.");
    NORM("A\0B", "a\0b."); /* U+0000 is kept by the normalisation (the tokenizer deletes it) */
    char *out;
    size_t n;
    CHECK(saa_caption_normalize("\xff", 1, &out, &n) == SAA_EINVAL); /* not UTF-8 */
}

static void test_tokenize(void)
{
    TOK("crack. hole.", CLS, CRACK, DOT, HOLE, DOT, SEP);
    TOK("", CLS, SEP);
    /* accents: lower + NFD + drop Mn (precomposed and decomposed forms agree) */
    TOK("Caf\xc3\xa9", CLS, CAFE, SEP);
    TOK("cafe\xcc\x81", CLS, CAFE, SEP);
    TOK("CAF\xc3\x89", CLS, CAFE, SEP);
    TOK("\xc4\xb0zmir", CLS, I, ZMIR_, SEP);        /* İ -> i + U+0307 -> i */
    TOK("\xce\xbf\xce\xb4\xce\xbf\xcf\x82", CLS, ODO, FSIGMA_, SEP); /* οδος */
    TOK("\xce\x9f\xce\x94\xce\x9f\xce\xa3", CLS, ODO, FSIGMA_, SEP); /* lower() inside the word: final sigma */
    /* WordPiece: greedy longest match with ## */
    TOK("unaffable cracks", CLS, UN, AFF_, ABLE_, CRACK, S_, SEP);
    TOK("steel", CLS, STE, EL_, SEP);
    /* a word with an unmatched position is ONE [UNK], even after a matched prefix */
    TOK("crackz hole", CLS, UNK, HOLE, SEP);
    TOK("zzz", CLS, UNK, SEP);
    /* punctuation (ASCII ranges and category P*) is split off; symbols (S*) stay inside the word */
    TOK("crack,hole", CLS, CRACK, COMMA, HOLE, SEP);
    TOK("don't", CLS, DON, APOS, T, SEP);
    TOK("crack-hole?", CLS, CRACK, DASH, HOLE, QM, SEP);
    TOK("crack\xe2\x80\x94hole", CLS, CRACK, UNK, HOLE, SEP);  /* U+2014 EM DASH (Pd): own token, unknown */
    TOK("crack\xc2\xb0", CLS, UNK, SEP);                        /* U+00B0 (So): part of the word -> [UNK] */
    /* CJK ideographs become words of their own; kana does not */
    TOK("\xe9\x87\x91" "crack", CLS, JIN, CRACK, SEP);
    TOK("crack\xe9\x87\x91hole", CLS, CRACK, JIN, HOLE, SEP);
    TOK("\xe3\x81\x8d" "crack", CLS, UNK, SEP);                 /* き + crack: one word */
    /* control characters are deleted (joining their neighbours); whitespace splits */
    TOK("cr\x07" "ack", CLS, CRACK, SEP);
    TOK("cr\xe2\x80\x8b" "ack", CLS, CRACK, SEP);               /* U+200B (Cf) deleted */
    TOK("cr\xc2\xad" "ack", CLS, CRACK, SEP);                   /* U+00AD soft hyphen (Cf) deleted */
    TOK("cr\xef\xbf\xbd" "ack", CLS, CRACK, SEP);               /* U+FFFD deleted */
    TOK("crack\thole\r\nx", CLS, CRACK, HOLE, X, SEP);
    TOK("crack\xc2\xa0hole\xe3\x80\x80x", CLS, CRACK, HOLE, X, SEP); /* Zs -> space */
    TOK("crack\xe2\x80\xa8hole", CLS, CRACK, HOLE, SEP);        /* U+2028 not cleaned, but str.split() splits */
    TOK("hole\x0b" "crack", CLS, UNK, SEP);                     /* U+000B deleted: "holecrack" -> [UNK] */
    TOK("crack   hole ", CLS, CRACK, HOLE, SEP);
    CHECK(ids_equal("cr\0ack", 6, (const int[]){CLS, CRACK, SEP, -1}));
    /* Unicode 14 (Python 3.11) is the reference, whatever utf8proc carries: characters added in Unicode 15
     * are unassigned (Cn), hence deleted like controls, instead of forming an [UNK] word */
    TOK("crack\xf0\x9f\xaa\x87", CLS, CRACK, SEP);              /* U+1FA87 MARACAS (So in 15.0) */
    TOK("cr\xe0\xb3\xb3" "ack", CLS, CRACK, SEP);               /* U+0CF3 Kannada sign (Mc in 15.0) */
    TOK("crack\xf0\xb1\x8d\x90", CLS, CRACK, SEP);              /* U+31350 CJK Ext. H (Lo in 15.0) */
    TOK("crack\xf0\x9f\x98\x80", CLS, UNK, SEP);                /* U+1F600 (So since 6.1): part of the word */
    /* literal special tokens: upper case ones are kept whole, lower-cased ones are plain text */
    TOK("crack [SEP] hole", CLS, CRACK, SEP, HOLE, SEP);
    TOK("[sep]", CLS, UNK, UNK, UNK, SEP);
    /* 100 code points is still a word; 101 is [UNK] */
    char w[128];
    int want[128];
    memset(w, 'a', 101);
    want[0] = CLS;
    want[1] = A;
    for (int i = 2; i <= 100; i++) want[i] = A_;
    want[101] = SEP;
    want[102] = -1;
    CHECK(ids_equal(w, 100, want));
    CHECK(ids_equal(w, 101, (const int[]){CLS, UNK, SEP, -1}));
    /* accents are stripped before the length test: 101 x U+00E1 -> 101 x "a" -> [UNK] */
    char acc[256];
    for (int i = 0; i < 101; i++) acc[2 * i] = (char)0xc3, acc[2 * i + 1] = (char)0xa1;
    CHECK(ids_equal(acc, 200, want));
    CHECK(ids_equal(acc, 202, (const int[]){CLS, UNK, SEP, -1}));
    /* the limit counts code points, not bytes: 100 x U+03C2 (2 bytes each) is still one word */
    for (int i = 0; i < 101; i++) acc[2 * i] = (char)0xcf, acc[2 * i + 1] = (char)0x82;
    want[1] = FSIGMA;
    for (int i = 2; i <= 100; i++) want[i] = FSIGMA_;
    CHECK(ids_equal(acc, 200, want));
    CHECK(ids_equal(acc, 202, (const int[]){CLS, UNK, SEP, -1}));
    int32_t *ids;
    int n;
    CHECK(saa_tokenize(tok, "\xc3", 1, &ids, &n) == SAA_EINVAL);
}

static void test_masks(void)
{
    saa_text_input in;
    const char cap[] = "crack. hole on x?.";
    CHECK(saa_text_encode(tok, cap, sizeof cap - 1, SAA_MAX_TEXT_LEN, &in) == SAA_OK);
    /* [CLS] crack . hole [UNK] x ? . [SEP]   ("on" is not in the vocabulary) */
    const int ids[] = {CLS, CRACK, DOT, HOLE, UNK, X, QM, DOT, SEP};
    const int pos[] = {0, 0, 1, 0, 1, 2, 3, 0, 0};
    CHECK(in.len_full == 9 && in.len == 9);
    for (int i = 0; i < 9 && in.len == 9; i++) {
        CHECK(in.ids[i] == ids[i]);
        CHECK(in.ids_full[i] == ids[i]);
        CHECK(in.position_ids[i] == pos[i]);
    }
    /* blocks {0}, {1,2}, {3..6}, {7}, {8} */
    const int block[] = {0, 1, 1, 2, 2, 2, 2, 3, 4};
    int mask_ok = 1;
    for (int r = 0; r < 9; r++)
        for (int c = 0; c < 9; c++) mask_ok &= in.self_attention_mask[r * 9 + c] == (block[r] == block[c]);
    CHECK(mask_ok);
    /* cate_to_token rows: one per special token that is neither first nor last; "?" then "." gives an
     * empty row */
    CHECK(in.num_phrases == 3);
    const char rows[3][10] = {"010000000", "000111000", "000000000"};
    int cate_ok = in.num_phrases == 3;
    for (int k = 0; k < 3 && cate_ok; k++)
        for (int c = 0; c < 9; c++) cate_ok &= in.cate_to_token_mask[k * 9 + c] == (rows[k][c] == '1');
    CHECK(cate_ok);
    char *p = saa_phrase_from_posmap(tok, in.cate_to_token_mask + 9, in.ids_full, 9);
    CHECK(p && !strcmp(p, "hole [UNK] x"));
    free(p);
    saa_text_input_free(&in);
    saa_text_input_free(&in); /* safe twice */

    /* truncation: 300 words + "." -> 303 tokens, sliced to 256; the mask block crossing column 256 is cut
     * and cate_to_token_mask keeps all 303 columns */
    char *big = malloc(6 * 300 + 2);
    for (int i = 0; i < 300; i++) memcpy(big + 6 * i, "crack ", 6);
    big[1800] = '.';
    CHECK(saa_text_encode(tok, big, 1801, SAA_MAX_TEXT_LEN, &in) == SAA_OK);
    CHECK(in.len_full == 303 && in.len == 256);
    CHECK(in.ids[255] == CRACK && in.ids_full[301] == DOT && in.ids_full[302] == SEP);
    CHECK(in.position_ids[255] == 254 && in.position_ids[1] == 0 && in.position_ids[0] == 0);
    CHECK(in.self_attention_mask[255 * 256 + 1] == 1 && in.self_attention_mask[0 * 256 + 1] == 0);
    CHECK(in.num_phrases == 1 && in.cate_to_token_mask[300] == 1 && in.cate_to_token_mask[301] == 0);
    saa_text_input_free(&in);
    /* a small max_text_len */
    CHECK(saa_text_encode(tok, "crack. hole.", 12, 4, &in) == SAA_OK);
    CHECK(in.len == 4 && in.len_full == 6 && in.position_ids[3] == 0 && in.self_attention_mask[3 * 4 + 3] == 1);
    saa_text_input_free(&in);
    free(big);
}

static void test_decode(void)
{
    DECODE("[CLS] crack. hole. [SEP]", CLS, CRACK, DOT, HOLE, DOT, SEP);
    DECODE("unaffable", UN, AFF_, ABLE_);
    DECODE("crack, hole?", CRACK, COMMA, HOLE, QM);
    DECODE("don't", DON, APOS, T);            /* " ' " -> "'" */
    DECODE("a's", A, APOS, S_);               /* "a ' ##s" -> "a 's" -> "a's" */
    DECODE("crack '", CRACK, APOS);           /* " '" alone is not a clean-up rule */
    DECODE("n't", N, APOS, T);                /* "n ' t" -> "n't" via " ' " */
    DECODE("##s", S_);                        /* a leading ## piece keeps its ## */
    DECODE("crack [UNK]", CRACK, 500);        /* unknown id -> [UNK] */
    char *s = saa_tokenizer_decode(tok, NULL, 0);
    CHECK(s && !strcmp(s, ""));
    free(s);
}

int main(void)
{
    CHECK(saa_tokenizer_load_buffer(vocab_text, sizeof vocab_text - 1, &tok) == SAA_OK);
    if (!tok) {
        fprintf(stderr, "cannot load the test vocabulary: %s\n", saa_last_error());
        return 1;
    }
    test_vocab();
    test_normalize();
    test_tokenize();
    test_masks();
    test_decode();
    saa_tokenizer_free(tok);
    TEST_MAIN_END();
}
